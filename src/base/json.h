// JSON helpers over Boost.JSON: tolerant field readers used by decoders, and the serializer
// used for every JSON response (compact, trailing newline and number format like upstream's
// json.Encoder).
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

// Compact serialization plus "\n" (the upstream json.Encoder framing). Numbers as Go's
// encoding/json writes them: shortest round-trip decimal, no exponent for 1e-6 <= |x| < 1e21
// (100, 1.25, 0.000125), else 1e-7 / 1e+21; NaN and infinities as null.
std::string Serialize(const bj::value& v);
// Appends `d` formatted as Serialize() formats a double.
void AppendDouble(std::string& out, double d);

}  // namespace cpamp::json
