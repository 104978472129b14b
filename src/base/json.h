// JSON helpers over Boost.JSON: tolerant field readers used by decoders, and the serializer
// used for every JSON response (compact, trailing newline like upstream's json.Encoder).
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cpamp::json {

namespace bj = boost::json;

// Parses `text` as JSON; a clear message on failure.
Result<bj::value> Parse(std::string_view text);
// Parses `text`, which must hold a JSON object.
Result<bj::object> ParseObject(std::string_view text);

// Field readers: nullopt when absent or of another type.
std::optional<std::string> GetString(const bj::object& o, std::string_view key);
std::optional<long long> GetInt(const bj::object& o,
                                std::string_view key);  // accepts integral doubles
std::optional<double> GetDouble(const bj::object& o, std::string_view key);
std::optional<bool> GetBool(const bj::object& o, std::string_view key);
const bj::object* GetObject(const bj::object& o, std::string_view key);
const bj::array* GetArray(const bj::object& o, std::string_view key);

// Compact serialization plus "\n" (the upstream json.Encoder framing).
std::string Serialize(const bj::value& v);

}  // namespace cpamp::json
