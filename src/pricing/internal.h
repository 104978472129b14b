// Helpers shared by the pricing .cc files. Not part of the public surface (pricing.h is).
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace cpamp::pricing::internal {

// A JSON number, or a string holding a decimal/scientific number; nullopt otherwise.
std::optional<double> NumberOf(const boost::json::value& v);
// NumberOf(o[key]) when the key is present; nullopt when absent or not numeric.
std::optional<double> NumberField(const boost::json::object& o, std::string_view key);
// The last '/'-separated segment, lower-cased.
std::string LastSegmentLower(std::string_view model);
// `segment` equals `family` or starts with `family-`.
bool IsFamily(std::string_view segment, std::string_view family);
// Number of UTF-8 code points (continuation bytes are not counted).
size_t RuneCount(std::string_view s);

}  // namespace cpamp::pricing::internal
