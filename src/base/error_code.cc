#include "base/error_code.h"

namespace cpamp {

std::string_view WireCode(ErrorCode code) {
  switch (code) {
#define CPAMP_X(name, wire, status) \
  case ErrorCode::name:             \
    return wire;
    CPAMP_ERROR_CODES(CPAMP_X)
#undef CPAMP_X
  }
  return "request_failed";
}

int DefaultHttpStatus(ErrorCode code) {
  switch (code) {
#define CPAMP_X(name, wire, status) \
  case ErrorCode::name:             \
    return status;
    CPAMP_ERROR_CODES(CPAMP_X)
#undef CPAMP_X
  }
  return 500;
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
#define CPAMP_X(name, wire, status) \
  case ErrorCode::name:             \
    return #name;
    CPAMP_ERROR_CODES(CPAMP_X)
#undef CPAMP_X
  }
  return "?";
}

}  // namespace cpamp
