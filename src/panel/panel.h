// The embedded management panel: one self-contained HTML file compiled into the binary.
//
// The build embeds web/dist/management.html when it exists (the built panel), otherwise
// src/panel/placeholder.html. PANEL_PATH overrides it at run time (handled by the caller).
#pragma once

#include <string_view>

namespace cpamp::panel {

// The embedded file's bytes (static storage, not NUL-terminated).
std::string_view EmbeddedHtml();
// Which source file was embedded (for /status and logs).
std::string_view EmbeddedSource();

}  // namespace cpamp::panel
