// A bare TCP relay on loopback, for bench/mcp_gateway.mjs: the latency that any proxy adds on this
// machine (one more hop and process wake-up each way), against which the gateway's own part is read.
// It parses nothing: each accepted connection gets its own connection to the target and a thread
// that waits for either side with poll and copies what arrives with read/write (TCP_NODELAY on
// both), as socat does: one wake-up and three system calls per message.
//   tcp_relay LISTEN_PORT TARGET_PORT    (prints "listening" once it accepts; stop it with SIGTERM)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void NoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Copies bytes both ways between `a` and `b` until both directions have ended.
void Relay(int a, int b) {
  char buf[64 << 10];
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  int open_directions = 2;
  while (open_directions > 0 && poll(fds, 2, -1) > 0) {
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const int out = i == 0 ? b : a;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      ssize_t sent = 0;
      while (n > 0 && sent < n) {
        const ssize_t w = write(out, buf + sent, static_cast<size_t>(n - sent));
        if (w <= 0) break;
        sent += w;
      }
      if (n <= 0 || sent < n) {  // this direction ended: pass the end on
        shutdown(out, SHUT_WR);
        fds[i].fd = -1;
        --open_directions;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tcp_relay LISTEN_PORT TARGET_PORT\n");
    return 2;
  }
  const int listen_port = std::atoi(argv[1]);
  const sockaddr_in target = Loopback(std::atoi(argv[2]));
  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in at = Loopback(listen_port);
  if (ls < 0 || bind(ls, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0 || listen(ls, 64) != 0) {
    std::perror("tcp_relay: listen");
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", listen_port);
  std::fflush(stdout);
  for (;;) {
    const int client = accept(ls, nullptr, nullptr);
    if (client < 0) continue;
    const int upstream = socket(AF_INET, SOCK_STREAM, 0);
    if (upstream < 0 || connect(upstream, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
      std::perror("tcp_relay: connect");
      close(client);
      if (upstream >= 0) close(upstream);
      continue;
    }
    NoDelay(client);
    NoDelay(upstream);
    std::thread([client, upstream] {
      Relay(client, upstream);
      close(client);
      close(upstream);
    }).detach();
  }
}
