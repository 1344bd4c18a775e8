// Precompiled header of the unit-test binaries (tests/CMakeLists.txt):
// GoogleTest and the Asio parts nearly every test file includes. See
// config/base/library_pch.h for why asio_frame_memory.h comes first.
#pragma once

#include "config/base/library_pch.h"

#include <atomic>
#include <functional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
