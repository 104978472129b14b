// SplitQueueArray: the items of CPA's HTTP usage-queue answer (cpa-protocol.md §3) without
// building a JSON DOM of the whole answer.
//
// The answer is a JSON array whose elements are record objects (embedded as raw JSON) or, for
// items that were not valid JSON, JSON strings. Objects (and any other non-string element) are
// returned as their exact text slice, so the normaliser parses each record once; strings are
// unescaped (the HTTP queue's "record as a string" form, and dead letters keep CPA's verbatim
// item); `null` and empty strings are skipped. Only the array's own structure is checked here
// (brackets, commas, string quoting, nesting): a malformed record inside a well-formed array
// becomes that item's dead letter downstream, not a loss of the whole answer.
//
// Threading: pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cpamp::collector {

// Appends the items to `items` and sets `*answered` to the number of array elements. Returns
// false with `*error` set when `body` is not a JSON array (then `items` is unchanged).
bool SplitQueueArray(std::string_view body, std::vector<std::string>* items, size_t* answered,
                     std::string* error);

}  // namespace cpamp::collector
