// Status and Result<T>: how every fallible Vellum function reports failure.
//
// No exceptions cross module boundaries. A function that can fail returns
// Status (no value) or Result<T> (a value or a non-OK Status). Codes map one to
// one onto gRPC's canonical status codes, so the API layer translates them
// without a table of special cases.
//
// Verification failures (a proof or a signature that does not check) use
// StatusCode::kDataLoss and carry a VerificationError with the evidence: which
// check failed, the expected and computed values, the index and tree size.
//
// Thread-safety: Status and Result are values; distinct objects may be used
// from different threads freely.
#ifndef VELLUM_BASE_STATUS_H_
#define VELLUM_BASE_STATUS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <cassert>

namespace vellum {

// Same numbering as grpc::StatusCode (and google.rpc.Code).
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// Returns the canonical upper-case name, e.g. "INVALID_ARGUMENT".
std::string_view StatusCodeName(StatusCode code);

// Evidence of a failed verification. Hashes are lowercase hex; fields that do
// not apply to a check are left empty / zero.
struct VerificationError {
  std::string check;     // e.g. "inclusion.root", "checkpoint.signature"
  std::string expected;  // what the trusted input says
  std::string computed;  // what the verifier recomputed from the proof
  std::uint64_t index = 0;
  std::uint64_t size = 0;
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Non-null only for verification failures built with VerificationFailed().
  const VerificationError* verification() const { return verification_.get(); }

  // "CODE: message".
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; keeps code and evidence.
  Status WithContext(std::string_view context) const;

  friend Status VerificationFailed(VerificationError error);

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::shared_ptr<const VerificationError> verification_;
};

// Builds a kDataLoss status whose message names the check and both values.
Status VerificationFailed(VerificationError error);

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }

// A value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "Result<T> built from an OK Status has no value");
    if (status_.ok()) status_ = Internal("Result built from OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const& { return status_; }
  // By value on temporaries, so `RETURN_IF_ERROR(F().status())` never dangles.
  Status status() && { return std::move(status_); }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

namespace internal {
inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
const Status& GetStatus(const Result<T>& r) { return r.status(); }
}  // namespace internal

}  // namespace vellum

#define VELLUM_CONCAT_INNER_(a, b) a##b
#define VELLUM_CONCAT_(a, b) VELLUM_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define VELLUM_RETURN_IF_ERROR(expr)                                       \
  do {                                                                     \
    auto&& vellum_value_ = (expr);                                         \
    const ::vellum::Status& vellum_status_ =                               \
        ::vellum::internal::GetStatus(vellum_value_);                      \
    if (!vellum_status_.ok()) return vellum_status_;                       \
  } while (0)

// `VELLUM_ASSIGN_OR_RETURN(auto x, Fn());` declares x from a Result or returns its status.
#define VELLUM_ASSIGN_OR_RETURN(lhs, expr) \
  VELLUM_ASSIGN_OR_RETURN_IMPL_(VELLUM_CONCAT_(vellum_result_, __LINE__), lhs, expr)
#define VELLUM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // VELLUM_BASE_STATUS_H_
