// Status helpers: early-return macros for absl::Status and absl::StatusOr, in plain functions
// and in coroutines.
//
//   HERALD_RETURN_IF_ERROR(DoThing());
//   HERALD_ASSIGN_OR_RETURN(auto value, ComputeValue());
//   HERALD_CO_RETURN_IF_ERROR(co_await client.Exec(...));   // inside an awaitable
//   HERALD_CO_ASSIGN_OR_RETURN(auto reply, co_await client.Exec(...));
#pragma once

#include <utility>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#define HERALD_STATUS_CONCAT_INNER(a, b) a##b
#define HERALD_STATUS_CONCAT(a, b) HERALD_STATUS_CONCAT_INNER(a, b)

#define HERALD_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (absl::Status herald_status_ = (expr); !herald_status_.ok()) { \
      return herald_status_;                                          \
    }                                                                 \
  } while (false)

#define HERALD_CO_RETURN_IF_ERROR(expr)                               \
  do {                                                                \
    if (absl::Status herald_status_ = (expr); !herald_status_.ok()) { \
      co_return herald_status_;                                       \
    }                                                                 \
  } while (false)

#define HERALD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr, ret) \
  auto tmp = (expr);                                      \
  if (!tmp.ok()) ret std::move(tmp).status();             \
  lhs = std::move(tmp).value()

#define HERALD_ASSIGN_OR_RETURN(lhs, expr) \
  HERALD_ASSIGN_OR_RETURN_IMPL(HERALD_STATUS_CONCAT(herald_statusor_, __LINE__), lhs, expr, return )

#define HERALD_CO_ASSIGN_OR_RETURN(lhs, expr)                                               \
  HERALD_ASSIGN_OR_RETURN_IMPL(HERALD_STATUS_CONCAT(herald_statusor_, __LINE__), lhs, expr, \
                               co_return )
