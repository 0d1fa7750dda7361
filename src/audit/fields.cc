#include "audit/fields.h"

#include <cstring>

#include "facts/utf8.h"

namespace mandate::audit {
namespace {

constexpr std::string_view kNames[RecordFields::kCount] = {"kind",     "actor", "action", "resource",
                                                           "decision", "rule",  "owner"};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Hex4(std::string_view s, size_t i, uint32_t* out = nullptr) {
  if (i + 4 > s.size()) return false;
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    const int d = HexDigit(s[i + k]);
    if (d < 0) return false;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  if (out != nullptr) *out = v;
  return true;
}

class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool AtEnd() {
    SkipSpace();
    return p_ == end_;
  }
  char Peek() {
    SkipSpace();
    return p_ < end_ ? *p_ : '\0';
  }

  // A string literal at the current position (after its opening quote was checked by Peek): sets
  // *raw to the text between the quotes and *escaped when it has escapes.
  bool String(std::string_view* raw, bool* escaped) {
    if (!Eat('"')) return false;
    const char* start = p_;
    *escaped = false;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        *raw = std::string_view(start, p_ - start);
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (end_ - p_ < 2 || std::strchr("\"\\/bfnrtu", p_[1]) == nullptr || p_[1] == '\0') return false;
        if (p_[1] == 'u' && !Hex4(std::string_view(p_, end_ - p_), 2)) return false;
        *escaped = true;
        p_ += 2;  // surrogate pairs are checked by Decode, for the fields it decodes
        continue;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      ++p_;
    }
    return false;
  }

  // Skips one value of any type; nested objects and arrays by matching brackets outside strings.
  bool SkipValue() {
    const char c = Peek();
    if (c == '"') {
      std::string_view raw;
      bool escaped = false;
      return String(&raw, &escaped);
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (p_ < end_) {
        const char ch = *p_;
        if (ch == '"') {
          std::string_view raw;
          bool escaped = false;
          if (!String(&raw, &escaped)) return false;
          continue;
        }
        ++p_;
        if (ch == '{' || ch == '[') {
          ++depth;
        } else if (ch == '}' || ch == ']') {
          if (--depth == 0) return true;
        }
      }
      return false;
    }
    for (std::string_view lit : {"true", "false", "null"}) {
      if (static_cast<size_t>(end_ - p_) >= lit.size() && std::string_view(p_, lit.size()) == lit) {
        p_ += lit.size();
        return true;
      }
    }
    const char* start = p_;
    while (p_ < end_ && (std::strchr("+-.eE", *p_) != nullptr || (*p_ >= '0' && *p_ <= '9'))) ++p_;
    return p_ > start;
  }

  // An integer (no fraction or exponent), else nullopt; the value is skipped either way.
  bool Integer(std::optional<int64_t>* out) {
    SkipSpace();
    const char* start = p_;
    if (!SkipValue()) return false;
    std::string_view t(start, p_ - start);
    const bool negative = !t.empty() && t[0] == '-';
    if (negative) t.remove_prefix(1);
    if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string_view::npos) {
      out->reset();
      return true;
    }
    int64_t v = 0;
    for (char c : t) v = v * 10 + (c - '0');
    *out = negative ? -v : v;
    return true;
  }

  bool Literal(std::string_view lit) {
    SkipSpace();
    if (static_cast<size_t>(end_ - p_) < lit.size() || std::string_view(p_, lit.size()) != lit) return false;
    p_ += lit.size();
    return true;
  }

 private:
  const char* p_;
  const char* end_;
};

// The text of a string literal with its escapes resolved; false for an invalid escape.
bool Decode(std::string_view raw, std::string* out) {
  out->clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out->push_back(raw[i]);
      continue;
    }
    if (++i == raw.size()) return false;
    switch (raw[i]) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '/':
        out->push_back('/');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!Hex4(raw, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate: its low half must follow
          uint32_t lo = 0;
          if (i + 2 >= raw.size() || raw[i + 1] != '\\' || raw[i + 2] != 'u' || !Hex4(raw, i + 3, &lo) || lo < 0xDC00 ||
              lo >= 0xE000) {
            return false;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return false;
        }
        facts::AppendUtf8(cp, out);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

bool ReadRecordFields(std::string_view body, RecordFields* out) {
  out->str.fill(std::string_view());
  out->agent = false;
  out->status.reset();
  Scanner s(body);
  if (!s.Eat('{')) return false;
  if (s.Eat('}')) return s.AtEnd();
  std::string key_text;
  for (;;) {
    if (s.Peek() != '"') return false;
    std::string_view key;
    bool escaped = false;
    if (!s.String(&key, &escaped)) return false;
    if (escaped) {
      if (!Decode(key, &key_text)) return false;
      key = key_text;
    }
    if (!s.Eat(':')) return false;
    int field = -1;
    for (int i = 0; i < RecordFields::kCount; ++i) {
      if (key == kNames[i]) field = i;
    }
    if (field >= 0) {
      std::string_view value;
      if (s.Peek() == '"') {
        if (!s.String(&value, &escaped)) return false;
        if (escaped) {
          if (!Decode(value, &out->decoded[field])) return false;
          value = out->decoded[field];
        }
      } else if (!s.SkipValue()) {
        return false;
      }
      out->str[field] = value;
    } else if (key == "agent") {
      out->agent = s.Literal("true");
      if (!out->agent && !s.SkipValue()) return false;
    } else if (key == "status") {
      if (!s.Integer(&out->status)) return false;
    } else if (!s.SkipValue()) {
      return false;
    }
    if (s.Eat('}')) return s.AtEnd();
    if (!s.Eat(',')) return false;
  }
}

}  // namespace mandate::audit
