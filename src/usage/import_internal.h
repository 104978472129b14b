// Private to src/usage: record mappers shared by the importer (import.cc) and the public
// NormalizeExportedRecord() entry point. Other contexts include usage.h / usage_data.h only.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "usage/usage.h"

namespace cpamp::usage::internal {

// True if `o` carries a non-empty event_hash / eventHash (an exported row, §5.3).
bool HasEventHash(const boost::json::object& o);

// Empty when the exported row `o` has a usable time (timestamp_ms, or a timestamp text that
// parses); otherwise why it cannot be imported. Upstream stores such a row at "now" (spec
// cpamp-storage.md §10 quirks), which makes every re-import a new row; our dedup key is
// (timestamp_ms, event_hash), so we reject it instead of doubling it.
std::string ExportedTimestampProblem(const boost::json::object& o);

// §5.4: an exported row -> a finished event. `o` must satisfy HasEventHash() and have no
// ExportedTimestampProblem().
UsageEvent EventFromExportedObject(const boost::json::object& o, int64_t now_ms);

// §5.5: one detail of a legacy CPA export. Ranks are 1-based positions of the endpoint/model key
// in byte order, `detail_index` is 0-based. Returns false with `*error` set when the detail has
// no usable timestamp.
bool EventFromLegacyDetail(const boost::json::object& detail, std::string_view endpoint,
                           std::string_view model_key, size_t endpoint_rank, size_t model_rank,
                           size_t detail_index, int64_t now_ms, UsageEvent* out,
                           std::string* error);

}  // namespace cpamp::usage::internal
