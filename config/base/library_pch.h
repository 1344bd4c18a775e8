// Precompiled header of the libraries that include Asio in most of their
// files (sag_session, sag_gateway; CMakeLists.txt: sag_precompile). Only
// headers every such file pays for anyway: a header here is parsed once per
// target instead of once per file, but a change to one of them rebuilds
// the whole target.
//
// asio_frame_memory.h comes first: its specializations must precede every
// use of Asio's frame allocator, and a target with a precompiled header gets
// it from here instead of the -include that every other target gets.
#pragma once

#include "config/base/asio_frame_memory.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
