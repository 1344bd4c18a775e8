/* The least an HTTP/1.1 keep-alive proxy can cost: a byte relay with
 * nothing of a proxy's own work (no parsing, no header rules, no balancing
 * decision per request), one epoll loop, one server connection per client
 * connection (what a pool amounts to under keep-alive load), TCP_NODELAY on
 * both. What it costs per request is the kernel's share of any proxy's
 * request (its system calls, loopback TCP, wake-ups) plus a few hundred
 * instructions: the floor under S4's figures, against which bench/ab_cpu.sh
 * sets sag's and HAProxy's. With --tls it terminates TLS on the client side
 * with OpenSSL's SSL_read/SSL_write (OpenSSL's own record layer, as HAProxy
 * uses it): the floor under S1's.
 *   cc -O2 -o floor_proxy bench/floor_proxy.c -lssl -lcrypto
 *   floor_proxy [--tls CERT KEY] LISTEN_PORT SERVER_PORT [SERVER_PORT...]
 * Listens and connects on 127.0.0.1 only; client connections are given
 * servers in turn. Not a product: a benchmark tool, with a relay that is
 * correct for any byte stream but has no timeouts. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kBuf = 16384 };

/* One direction's end: bytes read from fd go to peer->fd. When the peer
 * can't take them all, the rest waits in buf and this end stops reading
 * until the peer's EPOLLOUT drains it. */
struct end {
  int fd;
  SSL *ssl; /* the client's end with --tls; NULL otherwise */
  struct end *peer;
  size_t off, len; /* pending bytes for peer->fd: buf[off, off + len) */
  char buf[kBuf];
};

static int ep;
static SSL_CTX *tls; /* --tls */
/* Ends closed during one epoll batch, freed after it: a later event of the
 * same batch may still name them. */
static struct end *closed[512];
static int nclosed;

static void watch(struct end *e, unsigned events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  if (epoll_ctl(ep, op, e->fd, &ev) != 0) {
    perror("epoll_ctl");
    exit(1);
  }
}

static void close_pair(struct end *e) {
  struct end *p = e->peer;
  if (e->fd < 0) return;
  close(e->fd);
  close(p->fd);
  e->fd = p->fd = -1;
  SSL_free(e->ssl);
  SSL_free(p->ssl);
  e->ssl = p->ssl = NULL;
  closed[nclosed++] = e;
  closed[nclosed++] = p;
}

static int nodelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* recv/send on an end, through TLS on a client's end with --tls: -1 with
 * errno EAGAIN when it would block (a handshake in progress included), 0
 * at the end of the stream. Without SSL_MODE_ENABLE_PARTIAL_WRITE a
 * positive SSL_write wrote everything, and one that would block is retried
 * with the same bytes, as OpenSSL requires. */
static ssize_t tls_result(SSL *ssl, int r) {
  if (r > 0) return r;
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    default:
      ERR_clear_error();
      errno = EIO;
      return -1;
  }
}

static ssize_t end_recv(struct end *e, char *buf, size_t n) {
  if (e->ssl) return tls_result(e->ssl, SSL_read(e->ssl, buf, (int)n));
  return recv(e->fd, buf, n, 0);
}

static ssize_t end_send(struct end *to, const char *buf, size_t n) {
  if (to->ssl) return tls_result(to->ssl, SSL_write(to->ssl, buf, (int)n));
  return send(to->fd, buf, n, MSG_NOSIGNAL);
}

/* Sends e's pending bytes to its peer; 1 when all went, 0 when the peer is
 * full (EPOLLOUT armed, e's reading paused), -1 on error. */
static int flush(struct end *e) {
  while (e->len > 0) {
    ssize_t n = end_send(e->peer, e->buf + e->off, e->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      watch(e, 0, EPOLL_CTL_MOD);
      watch(e->peer, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      return 0;
    }
    if (n <= 0) return -1;
    e->off += (size_t)n;
    e->len -= (size_t)n;
  }
  e->off = 0;
  return 1;
}

static void on_readable(struct end *e) {
  /* Records OpenSSL already holds decrypted don't make the socket readable. */
  do {
    ssize_t n = end_recv(e, e->buf, kBuf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      close_pair(e);
      return;
    }
    e->len = (size_t)n;
    int r = flush(e);
    if (r < 0) close_pair(e);
    if (r <= 0) return;
  } while (e->ssl && SSL_pending(e->ssl) > 0);
}

/* e's socket can take more: finish what its peer had pending for it. */
static void on_writable(struct end *e) {
  struct end *src = e->peer;
  int r = flush(src);
  if (r < 0) {
    close_pair(e);
  } else if (r > 0) {
    watch(e, EPOLLIN, EPOLL_CTL_MOD);
    watch(src, EPOLLIN, EPOLL_CTL_MOD);
  }
}

static int connect_server(unsigned short port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  /* Blocking connect on loopback: immediate, and keeps the relay simple. */
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || nodelay(fd) != 0) {
    close(fd);
    return -1;
  }
  if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void on_accept(int lfd, const unsigned short *servers, int nservers) {
  static unsigned next;
  for (;;) {
    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    if (c < 0) return;
    int s = connect_server(servers[next++ % (unsigned)nservers]);
    if (s < 0 || nodelay(c) != 0) {
      close(c);
      if (s >= 0) close(s);
      continue;
    }
    struct end *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    if (!a || !b) {
      perror("calloc");
      exit(1);
    }
    a->fd = c;
    b->fd = s;
    if (tls) {
      a->ssl = SSL_new(tls);
      if (!a->ssl || !SSL_set_fd(a->ssl, c)) {
        fprintf(stderr, "SSL_new failed\n");
        exit(1);
      }
      SSL_set_accept_state(a->ssl);
    }
    a->peer = b;
    b->peer = a;
    watch(a, EPOLLIN, EPOLL_CTL_ADD);
    watch(b, EPOLLIN, EPOLL_CTL_ADD);
  }
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "--tls") == 0) {
    tls = SSL_CTX_new(TLS_server_method());
    if (!tls || SSL_CTX_use_certificate_chain_file(tls, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls, argv[3], SSL_FILETYPE_PEM) != 1) {
      ERR_print_errors_fp(stderr);
      return 1;
    }
    argv += 3;
    argc -= 3;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: floor_proxy [--tls CERT KEY] LISTEN_PORT SERVER_PORT [SERVER_PORT...]\n");
    return 2;
  }
  int nservers = argc - 2;
  unsigned short *servers = calloc((size_t)nservers, sizeof *servers);
  for (int i = 0; i < nservers; ++i) servers[i] = (unsigned short)atoi(argv[i + 2]);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
    perror("listen");
    return 1;
  }
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      struct end *e = evs[i].data.ptr;
      if (e && e->fd < 0) continue;
      if (!e) {
        on_accept(lfd, servers, nservers);
      } else if (evs[i].events & EPOLLOUT) {
        on_writable(e);
      } else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(e);
      }
    }
    while (nclosed > 0) free(closed[--nclosed]);
  }
}
