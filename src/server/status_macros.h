// Early-return helpers for absl::Status / absl::StatusOr, private to the server module.
#ifndef MANDATE_SERVER_STATUS_MACROS_H_
#define MANDATE_SERVER_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MANDATE_STATUS_CONCAT_INNER(a, b) a##b
#define MANDATE_STATUS_CONCAT(a, b) MANDATE_STATUS_CONCAT_INNER(a, b)

// `MANDATE_ASSIGN_OR_RETURN(auto x, F());` declares x from an OK StatusOr, or returns its status.
#define MANDATE_ASSIGN_OR_RETURN(lhs, expr) \
  MANDATE_ASSIGN_OR_RETURN_IMPL(MANDATE_STATUS_CONCAT(status_or_, __LINE__), lhs, expr)
#define MANDATE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(*tmp)

#define MANDATE_RETURN_IF_ERROR(expr)    \
  do {                                   \
    const absl::Status status_ = (expr); \
    if (!status_.ok()) return status_;   \
  } while (0)

#endif  // MANDATE_SERVER_STATUS_MACROS_H_
