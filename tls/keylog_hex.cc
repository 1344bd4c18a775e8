#include "tls/keylog_hex.h"

#include <dlfcn.h>

#include <cstdarg>
#include <cstddef>

// glibc's fortified sprintf and the va_list form it forwards to, declared
// as stdio.h declares them under _FORTIFY_SOURCE (which may be on or off).
extern "C" int __vsprintf_chk(char* __restrict s, int flag, size_t slen,
                              const char* __restrict format, va_list ap) noexcept;
extern "C" int __sprintf_chk(char* __restrict s, int flag, size_t slen,
                             const char* __restrict format, ...) noexcept;

namespace {

bool is_hex_byte_format(const char* f) {
  return f[0] == '%' && f[1] == '0' && f[2] == '2' && f[3] == 'x' && f[4] == '\0';
}

}  // namespace

// Contract: as glibc's. `slen` is the destination's size as the compiler
// knew it ((size_t)-1 when unknown); three bytes are written on the fast
// path, so a smaller `slen` takes glibc's path, which fails the check.
extern "C" int __sprintf_chk(char* __restrict s, int flag, size_t slen,
                             const char* __restrict format, ...) noexcept {
  va_list ap;
  if (slen >= 3 && is_hex_byte_format(format)) {
    va_start(ap, format);
    const unsigned v = va_arg(ap, unsigned);
    va_end(ap);
    if (v <= 0xff) {
      static constexpr char kDigits[] = "0123456789abcdef";
      s[0] = kDigits[v >> 4];
      s[1] = kDigits[v & 0xf];
      s[2] = '\0';
      return 2;
    }
  }
  va_start(ap, format);
  const int n = __vsprintf_chk(s, flag, slen, format, ap);
  va_end(ap);
  return n;
}

namespace sag::tls {

bool keylog_hex_bound() {
  return dlsym(RTLD_DEFAULT, "__sprintf_chk") == reinterpret_cast<void*>(&__sprintf_chk);
}

}  // namespace sag::tls
