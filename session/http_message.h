// The HTTP message types of the request path. Header fields are held flat
// (HeaderFields) in blocks from the thread's block cache: a request's
// fields, target and reason are made and dropped once per exchange, and in
// steady state that never reaches malloc (issue: no allocation per
// request). Every session and forward step uses these, so a message can
// move between them without conversion.
#pragma once

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "config/base/block_cache.h"
#include "session/header_fields.h"

namespace sag::session {

using Fields = HeaderFields;
using RequestHeader = boost::beast::http::request_header<Fields>;
using ResponseHeader = boost::beast::http::response_header<Fields>;
using Request = boost::beast::http::request<boost::beast::http::buffer_body, Fields>;
using Response = boost::beast::http::response<boost::beast::http::buffer_body, Fields>;

}  // namespace sag::session
