// UTF-8 encoding of one code point, shared by the decoders that unescape `\u` sequences (the Polar
// lexer, the audit log's field reader).
#ifndef MANDATE_FACTS_UTF8_H_
#define MANDATE_FACTS_UTF8_H_

#include <cstdint>
#include <string>

namespace mandate::facts {

// Appends `cp` (a valid scalar value: ≤ 0x10FFFF, not a surrogate; callers check) as UTF-8.
inline void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace mandate::facts

#endif  // MANDATE_FACTS_UTF8_H_
