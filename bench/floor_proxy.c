/* The least a plain HTTP/1.1 keep-alive proxy can cost: a byte relay with
 * nothing of a proxy's own work (no parsing, no header rules, no balancing
 * decision per request), one epoll loop, one server connection per client
 * connection (what a pool amounts to under keep-alive load), TCP_NODELAY on
 * both. What it costs per request is the kernel's share of any proxy's
 * request (its system calls, loopback TCP, wake-ups) plus a few hundred
 * instructions: the floor under S4's figures, against which bench/ab_cpu.sh
 * sets sag's and HAProxy's.
 *   cc -O2 -o floor_proxy bench/floor_proxy.c
 *   floor_proxy LISTEN_PORT SERVER_PORT [SERVER_PORT...]   (127.0.0.1 only)
 * Client connections are given servers in turn. Not a product: a benchmark
 * tool, with a relay that is correct for any byte stream but no timeouts. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
  struct end *peer;
  size_t off, len; /* pending bytes for peer->fd: buf[off, off + len) */
  char buf[kBuf];
};

static int ep;
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
  closed[nclosed++] = e;
  closed[nclosed++] = p;
}

static int nodelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Sends e's pending bytes to its peer; 1 when all went, 0 when the peer is
 * full (EPOLLOUT armed, e's reading paused), -1 on error. */
static int flush(struct end *e) {
  while (e->len > 0) {
    ssize_t n = send(e->peer->fd, e->buf + e->off, e->len, MSG_NOSIGNAL);
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
  ssize_t n = recv(e->fd, e->buf, kBuf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    close_pair(e);
    return;
  }
  e->len = (size_t)n;
  if (flush(e) < 0) close_pair(e);
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
    a->peer = b;
    b->peer = a;
    watch(a, EPOLLIN, EPOLL_CTL_ADD);
    watch(b, EPOLLIN, EPOLL_CTL_ADD);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s LISTEN_PORT SERVER_PORT [SERVER_PORT...]\n", argv[0]);
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
