// OpenSSL's heap with per-thread caches in front of malloc. With
// SSL_MODE_RELEASE_BUFFERS an idle connection holds no record buffers, so
// OpenSSL takes and frees them (and a few small records) on every request;
// served from the worker thread's free lists, that churn never reaches
// malloc, and blocks are malloc's own, so idle memory is unchanged.
#pragma once

namespace sag::tls {

// Whether the routing is in place. It is installed before static
// initialization of any program that calls this (so a call from main is
// enough to link it in); false when OpenSSL refused, then its default heap
// is used, which is only slower.
bool route_openssl_memory();

}  // namespace sag::tls
