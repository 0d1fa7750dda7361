// Polar lexer: bytes to tokens with 1-based line/column spans (columns count bytes).
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "facts/utf8.h"
#include "polar/internal.h"

namespace mandate::polar::internal {
namespace {

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Length of the valid UTF-8 sequence starting at s[0], or 0 if invalid (overlongs, surrogates and
// values above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = byte(0);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

class Lexer {
 public:
  Lexer(std::string_view text, uint32_t file, const LexOptions& options, std::vector<Diagnostic>* diags)
      : text_(text), file_(file), options_(options), diags_(diags) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      SkipSpaceAndComments();
      Token t;
      t.span.file = file_;
      t.span.line = line_;
      t.span.col = col_;
      if (pos_ >= text_.size()) {
        t.kind = Tok::kEof;
        Close(&t);
        out.push_back(std::move(t));
        return out;
      }
      if (LexOne(&t)) {
        Close(&t);
        out.push_back(std::move(t));
      }
    }
  }

 private:
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  void Advance(size_t n = 1) {
    for (size_t i = 0; i < n && pos_ < text_.size(); ++i, ++pos_) {
      if (text_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else {
        ++col_;
      }
    }
  }
  void Close(Token* t) const {
    t->span.end_line = line_;
    t->span.end_col = col_;
  }
  Span Here() const { return Span{file_, line_, col_, line_, col_ + 1}; }
  void Error(Span span, std::string message, std::string hint = "") {
    diags_->push_back(MakeError(span, std::move(message), std::move(hint)));
  }

  void SkipSpaceAndComments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (IsSpace(c)) {
        Advance();
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') Advance();
      } else {
        return;
      }
    }
  }

  // Lexes one token into *t; returns false when the input was skipped as an error.
  bool LexOne(Token* t) {
    char c = Peek();
    if (IsIdentStart(c)) return LexIdent(t);
    if (IsDigit(c) || ((c == '-' || c == '+') && IsDigit(Peek(1)))) return LexInteger(t);
    if (c == '"') return LexString(t);
    if (c == '@') {
      Advance();
      if (!IsIdentStart(Peek())) {
        Error(t->span, "expected a constant name after '@'", "the only constant is @current_unix_time");
        return false;
      }
      t->kind = Tok::kConstant;
      while (IsIdentChar(Peek())) t->text.push_back(Peek()), Advance();
      return true;
    }
    struct Punct {
      std::string_view text;
      Tok kind;
    };
    static constexpr Punct kPuncts[] = {
        {"==", Tok::kEqEq}, {"!=", Tok::kNe},     {"<=", Tok::kLe},     {">=", Tok::kGe},
        {"(", Tok::kLParen}, {")", Tok::kRParen}, {"{", Tok::kLBrace},  {"}", Tok::kRBrace},
        {"[", Tok::kLBracket}, {"]", Tok::kRBracket}, {",", Tok::kComma}, {";", Tok::kSemi},
        {":", Tok::kColon},  {"=", Tok::kEq},     {"<", Tok::kLt},      {">", Tok::kGt},
    };
    for (const Punct& p : kPuncts) {
      if (text_.substr(pos_, p.text.size()) == p.text) {
        t->kind = p.kind;
        t->text = std::string(p.text);
        Advance(p.text.size());
        return true;
      }
    }
    // An unexpected character: report a run of them once, so that binary junk gives one error.
    Span span = Here();
    std::string shown;
    size_t n = static_cast<unsigned char>(c) >= 0x80 ? Utf8SequenceLength(text_.substr(pos_)) : 1;
    if (n == 0) {
      shown = absl::StrFormat("byte 0x%02X (not valid UTF-8)", static_cast<unsigned char>(c));
    } else if (n == 1 && (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)) {
      shown = absl::StrFormat("control character 0x%02X", static_cast<unsigned char>(c));
    } else {
      shown = absl::StrCat("character '", std::string(text_.substr(pos_, n)), "'");
    }
    Advance(n == 0 ? 1 : n);
    while (pos_ < text_.size() && !IsSpace(Peek()) && !IsIdentChar(Peek()) &&
           std::string_view("\"#@(){}[],;:=!<>").find(Peek()) == std::string_view::npos) {
      Advance();
    }
    span.end_line = line_;
    span.end_col = col_;
    Error(span, absl::StrCat("unexpected ", shown));
    return false;
  }

  bool LexIdent(Token* t) {
    t->kind = Tok::kIdent;
    while (true) {
      while (IsIdentChar(Peek())) t->text.push_back(Peek()), Advance();
      if (Peek() == ':' && Peek(1) == ':' && IsIdentStart(Peek(2))) {
        t->text += "::";
        Advance(2);
        continue;
      }
      break;
    }
    if (options_.cli_values && t->text[0] >= 'A' && t->text[0] <= 'Z' && Peek() == ':' &&
        Peek(1) != '\0' && !IsSpace(Peek(1)) && Peek(1) != ':') {
      Advance();  // ':'
      t->kind = Tok::kCliValue;
      t->type = std::move(t->text);
      t->text.clear();
      if (Peek() == '"') {
        Token str;
        str.span = Here();
        if (!LexString(&str)) return false;
        t->text = std::move(str.text);
        return true;
      }
      while (pos_ < text_.size() && !IsSpace(Peek()) && Peek() != ',' && Peek() != ')' && Peek() != '(') {
        size_t n = Utf8SequenceLength(text_.substr(pos_));
        if (n == 0 || static_cast<unsigned char>(Peek()) < 0x20 || Peek() == 0x7F) {
          Error(Here(), absl::StrFormat("invalid byte 0x%02X in %s value", static_cast<unsigned char>(Peek()), t->type),
                "values must be UTF-8 text without control characters");
          while (pos_ < text_.size() && !IsSpace(Peek()) && Peek() != ',' && Peek() != ')') Advance();
          return false;
        }
        t->text.append(text_.substr(pos_, n));
        Advance(n);
      }
    }
    return true;
  }

  bool LexInteger(Token* t) {
    t->kind = Tok::kInteger;
    const size_t start = pos_;
    bool negative = false;
    if (Peek() == '-' || Peek() == '+') {
      negative = Peek() == '-';
      t->text.push_back(Peek());
      Advance();
    }
    // Accumulate the magnitude; |INT64_MIN| = INT64_MAX + 1 is allowed only for negative numbers.
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    uint64_t magnitude = 0;
    bool overflow = false;
    while (IsDigit(Peek())) {
      uint64_t d = static_cast<uint64_t>(Peek() - '0');
      if (magnitude > (limit - d) / 10) overflow = true;
      if (!overflow) magnitude = magnitude * 10 + d;
      t->text.push_back(Peek());
      Advance();
    }
    if (IsIdentChar(Peek())) {
      while (IsIdentChar(Peek())) Advance();
      Span span = t->span;
      span.end_line = line_;
      span.end_col = col_;
      Error(span, absl::StrCat("invalid number \"", std::string(text_.substr(start, pos_ - start)), "\""),
            "identifiers cannot start with a digit");
      return false;
    }
    if (overflow) {
      Span span = t->span;
      span.end_line = line_;
      span.end_col = col_;
      Error(span, absl::StrCat("integer ", t->text, " does not fit in 64 bits"),
            "integers range from -9223372036854775808 to 9223372036854775807");
      return false;
    }
    t->integer = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    return true;
  }

  bool LexString(Token* t) {
    t->kind = Tok::kString;
    Advance();  // opening quote
    bool ok = true;
    while (true) {
      if (pos_ >= text_.size() || Peek() == '\n') {
        Span span = t->span;
        span.end_line = line_;
        span.end_col = col_;
        Error(span, "unterminated string", "close the string with '\"' on the same line");
        return false;
      }
      char c = Peek();
      if (c == '"') {
        Advance();
        return ok;
      }
      if (c == '\\') {
        Span esc = Here();
        Advance();
        char e = Peek();
        switch (e) {
          case '"': t->text.push_back('"'); break;
          case '\\': t->text.push_back('\\'); break;
          case '/': t->text.push_back('/'); break;
          case 'n': t->text.push_back('\n'); break;
          case 't': t->text.push_back('\t'); break;
          case 'r': t->text.push_back('\r'); break;
          case '0': t->text.push_back('\0'); break;
          case 'u': {
            if (!LexUnicodeEscape(esc, &t->text)) ok = false;
            continue;
          }
          default:
            if (e == '\n' || pos_ >= text_.size()) continue;  // reported as unterminated
            esc.end_col = col_ + 1;
            Error(esc, absl::StrCat("unknown escape sequence '\\", std::string(1, e), "' in string"),
                  "valid escapes are \\\" \\\\ \\/ \\n \\t \\r \\0 and \\u{hex}");
            ok = false;
        }
        Advance();
        continue;
      }
      size_t n = Utf8SequenceLength(text_.substr(pos_));
      if (n == 0) {
        Span bad = Here();
        Error(bad, absl::StrFormat("invalid UTF-8 byte 0x%02X in string", static_cast<unsigned char>(c)),
              "policy text must be UTF-8");
        ok = false;
        Advance();
        continue;
      }
      if (n == 1 && static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        Error(Here(), absl::StrFormat("control character 0x%02X in string", static_cast<unsigned char>(c)),
              "write it as an escape such as \\n or \\u{1b}");
        ok = false;
      } else {
        t->text.append(text_.substr(pos_, n));
      }
      Advance(n);
    }
  }

  // After the backslash of `\u{...}`; positioned on 'u'.
  bool LexUnicodeEscape(Span esc, std::string* out) {
    Advance();  // 'u'
    if (Peek() != '{') {
      esc.end_col = col_;
      Error(esc, "invalid unicode escape", "write it as \\u{1F600}");
      return false;
    }
    Advance();
    uint32_t cp = 0;
    int digits = 0;
    while (std::isxdigit(static_cast<unsigned char>(Peek())) && digits < 7) {
      char h = Peek();
      cp = cp * 16 + static_cast<uint32_t>(IsDigit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
      ++digits;
      Advance();
    }
    bool closed = Peek() == '}';
    if (closed) Advance();
    esc.end_col = col_;
    if (!closed || digits == 0 || digits > 6 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      Error(esc, "invalid unicode escape", "write 1 to 6 hex digits of a Unicode scalar value: \\u{1F600}");
      return false;
    }
    facts::AppendUtf8(cp, out);
    return true;
  }

  std::string_view text_;
  uint32_t file_;
  LexOptions options_;
  std::vector<Diagnostic>* diags_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
};

}  // namespace

std::vector<Token> Lex(std::string_view text, uint32_t file, const LexOptions& options,
                       std::vector<Diagnostic>* diags) {
  return Lexer(text, file, options, diags).Run();
}

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEof: return "end of input";
    case Tok::kIdent: return absl::StrCat("'", t.text, "'");
    case Tok::kString: return "a string";
    case Tok::kInteger: return absl::StrCat("integer ", t.integer);
    case Tok::kConstant: return absl::StrCat("'@", t.text, "'");
    case Tok::kCliValue: return absl::StrCat("'", t.type, ":", t.text, "'");
    default: return absl::StrCat("'", t.text, "'");
  }
}

}  // namespace mandate::polar::internal
