// The services' HTTPS server on Boost.Asio and Boost.Beast (see net/http.h).
//
// Threads: run() is the only thread that touches sockets and the connection
// tables, so neither needs a lock; handlers run on a thread pool and hand their
// answer back to the I/O thread with a post.
#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <csignal>
#include <list>
#include <map>
#include <optional>
#include <regex>
#include <unordered_set>

#include "net/http.h"

namespace zf::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using Stream = beast::ssl_stream<beast::tcp_stream>;
using BeastRequest = http::request<http::string_body>;
using BeastResponse = http::response<http::string_body>;

struct CompiledRoute {
  std::string method;
  std::regex re;
  httplib::Server::Handler handler;
  WaitingHandler waiting;
};

// Where a topic's latest notify is remembered: topics share slots, and a
// shared slot only costs a waiting request one needless run.
constexpr std::size_t kNotifySlots = 1024;
std::size_t notify_slot(const std::string& topic) { return std::hash<std::string>{}(topic) % kNotifySlots; }

// A path pattern and the methods it answers, for 405s and their Allow header.
struct KnownPath {
  std::string pattern;
  std::regex re;
  std::string allow;
};

httplib::Response problem(Errc code, std::string detail, int status = 0, std::string field = {}) {
  httplib::Response res;
  write_problem(res, Error{code, std::move(field), std::move(detail)});
  if (status) res.status = status;
  return res;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; '+' is a space only in a query. A malformed escape stays as it is.
std::string decode(std::string_view s, bool query) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(query && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

void parse_query(std::string_view q, httplib::Params& params) {
  while (!q.empty()) {
    std::size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    params.emplace(decode(pair.substr(0, eq), true),
                   eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1), true));
  }
}

}  // namespace

class Connection;

struct HttpsServer::Impl {
  explicit Impl(ServerLimits l) : limits(l), pool(static_cast<std::size_t>(std::max(1, l.workers))) {}

  ServerLimits limits;
  // Declared before the I/O context: handlers still queued there when it is
  // destroyed own connections whose streams use this context.
  asio::ssl::context tls{asio::ssl::context::tls_server};
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_retry{ioc};
  std::optional<asio::signal_set> signals;
  asio::thread_pool pool;

  std::vector<CompiledRoute> routes;
  std::vector<KnownPath> known;
  httplib::Server::Handler after;

  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open{0};
  std::size_t max_connections = 0;  // limits.max_connections within the file limit

  // I/O thread only. Every open connection; those waiting for a handshake or
  // a request, longest-waiting first, overall and per peer.
  std::unordered_set<Connection*> live;
  std::list<Connection*> waiting;
  struct Peer {
    std::size_t count = 0;
    std::list<Connection*> waiting;
  };
  std::map<asio::ip::address, Peer> peers;
  std::size_t queued = 0;  // requests handed to the pool and not yet answered
  // Parked requests run again on the pool (bounded by max_waiting): not
  // counted in `queued`, so that one notify of a topic many wait on does not
  // have fresh requests refused as busy.
  std::size_t waking = 0;
  // Requests parked by waiting handlers, by topic; and per slot, the number of
  // the latest notify (notify_seq counts them from any thread).
  std::multimap<std::string, std::shared_ptr<Connection>> parked;
  std::array<std::uint64_t, kNotifySlots> last_notify{};
  std::atomic<std::uint64_t> notify_seq{0};
  std::atomic<std::size_t> parked_count{0};

  void accept();
  void admit(tcp::socket socket);
  void close_all();
  // Runs the route's handler; a waiting handler that asks to wait sets `wait`.
  httplib::Response handle(const BeastRequest& in, const std::string& peer, std::optional<Wait>& wait) const;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpsServer::Impl& s, tcp::socket socket, asio::ip::address peer)
      : s_(s), stream_(std::move(socket), s.tls), peer_(peer), peer_text_(peer.to_string()), wait_timer_(s.ioc) {}

  const asio::ip::address& peer() const { return peer_; }

  void start() {
    set_waiting(true);
    lowest().expires_after(s_.limits.handshake);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (ec) return self->close();
                              self->read_header();
                            });
  }

  // Closes the socket now; pending operations end with an error and drop
  // their hold on this object.
  void close() {
    if (closed_) return;
    auto keep = shared_from_this();  // the parked table may hold the last reference
    closed_ = true;
    unpark();
    set_waiting(false);
    s_.live.erase(this);
    auto p = s_.peers.find(peer_);
    if (p != s_.peers.end() && --p->second.count == 0) s_.peers.erase(p);
    --s_.open;
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // Enters (at the back) or leaves the lists of connections that may be
  // closed to make room.
  void set_waiting(bool w) {
    if (w == waiting_) return;
    auto& peer_list = s_.peers[peer_].waiting;
    if (w) {
      in_all_ = s_.waiting.insert(s_.waiting.end(), this);
      in_peer_ = peer_list.insert(peer_list.end(), this);
    } else {
      s_.waiting.erase(in_all_);
      peer_list.erase(in_peer_);
    }
    waiting_ = w;
  }

  void read_header() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(s_.limits.max_header_bytes));
    parser_->body_limit(s_.limits.max_body_bytes);
    set_waiting(true);
    lowest().expires_after(s_.limits.header);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return refuse(ec);
    // A request has begun: it is no longer idle, so it is not closed for room.
    set_waiting(false);
    if (parser_->is_done()) return dispatch();
    lowest().expires_after(s_.limits.body);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->refuse(ec);
                       self->dispatch();
                     });
  }

  // A read that failed: a gone or timed-out client is closed; a request we
  // cannot take is answered in our words, then the connection is closed.
  void refuse(beast::error_code ec) {
    if (closed_ || ec == beast::error::timeout || ec == http::error::end_of_stream ||
        ec == asio::error::operation_aborted || ec == asio::error::eof ||
        ec == asio::ssl::error::stream_truncated || ec == http::error::partial_message)
      return close();
    keep_alive_ = false;
    head_ = false;
    // The client may still be sending what we refused: read it away after the
    // answer, or closing with unread bytes would reset the connection and the
    // client would never see why.
    drain_ = true;
    if (ec == http::error::body_limit)
      return write(problem(Errc::too_large, "request body too large"));
    if (ec == http::error::header_limit)
      return write(problem(Errc::too_large, "request header too large", 431));
    // Any other HTTP parse error is a request we do not understand; a TLS or
    // socket error is a connection that is gone.
    if (ec.category() == http::make_error_code(http::error::bad_target).category())
      return write(problem(Errc::bad_request, "request not understood"));
    close();
  }

  void dispatch() {
    lowest().expires_never();
    BeastRequest req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    if (s_.queued >= s_.limits.max_queued) {
      keep_alive_ = false;
      return write(problem(Errc::unavailable, "the server is busy; nothing was done, try again"));
    }
    ++s_.queued;
    asio::post(s_.pool, [self = shared_from_this(), req = std::move(req)]() mutable {
      const std::uint64_t seen = self->s_.notify_seq.load();
      std::optional<Wait> wait;
      httplib::Response res = self->s_.handle(req, self->peer_text_, wait);
      asio::post(self->s_.ioc, [self, res = std::move(res), wait = std::move(wait), seen]() mutable {
        --self->s_.queued;
        if (!wait || wait->wait.count() <= 0 || !wait->again) return self->write(std::move(res));
        const auto deadline = std::chrono::steady_clock::now() + wait->wait;
        self->park(std::make_shared<Wait>(std::move(*wait)), std::move(res), deadline, seen);
      });
    });
  }

 public:
  // A notify for the topic this connection waits on: run `again` now.
  void wake() {
    if (!parked_) return;
    auto wait = wait_;
    auto fallback = std::move(fallback_);
    unpark();
    ++s_.waking;
    asio::post(s_.pool, [self = shared_from_this(), wait, fallback = std::move(fallback)]() mutable {
      const std::uint64_t seen = self->s_.notify_seq.load();
      httplib::Response res;
      bool done = false;
      try {
        done = wait->again(res);
        if (done && res.status <= 0) res.status = 200;
      } catch (...) {
        res = problem(Errc::internal, "unexpected server error");
        done = true;
      }
      asio::post(self->s_.ioc, [self, wait, seen, done, res = std::move(res), fallback = std::move(fallback)]() mutable {
        --self->s_.waking;
        if (done) return self->write(std::move(res));
        self->park(wait, std::move(fallback), self->deadline_, seen);
      });
    });
  }

 private:
  // Holds the request until a notify for its topic or the deadline. `seen`
  // is the notify count before the handler read: a notify since then (it may
  // have come before this park) runs it again at once.
  void park(std::shared_ptr<Wait> wait, httplib::Response fallback, std::chrono::steady_clock::time_point deadline,
            std::uint64_t seen) {
    if (closed_) return;
    if (s_.stopping || s_.parked.size() >= s_.limits.max_waiting || std::chrono::steady_clock::now() >= deadline)
      return write(std::move(fallback));
    wait_ = std::move(wait);
    fallback_ = std::move(fallback);
    deadline_ = deadline;
    parked_at_ = s_.parked.emplace(wait_->topic, shared_from_this());
    parked_ = true;
    ++s_.parked_count;
    set_waiting(true);  // idle while it waits: it may be closed for room
    const std::uint64_t generation = ++park_generation_;
    wait_timer_.expires_at(deadline);
    wait_timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || !self->parked_ || self->park_generation_ != generation) return;
      auto fallback = std::move(self->fallback_);
      self->unpark();
      self->write(std::move(fallback));
    });
    if (s_.last_notify[notify_slot(wait_->topic)] > seen) wake();
  }

  void unpark() {
    if (!parked_) return;
    parked_ = false;
    --s_.parked_count;
    set_waiting(false);
    wait_timer_.cancel();
    s_.parked.erase(parked_at_);  // may drop a reference to this: callers hold one
  }

  void write(httplib::Response res) {
    if (closed_) return;
    auto out = std::make_shared<BeastResponse>();
    out->version(11);
    out->result(static_cast<unsigned>(res.status > 0 ? res.status : 200));
    for (const auto& [name, value] : res.headers) {
      if (beast::iequals(name, "Content-Length") || beast::iequals(name, "Connection") ||
          beast::iequals(name, "Transfer-Encoding"))
        continue;
      out->insert(name, value);
    }
    out->keep_alive(keep_alive_ && !s_.stopping);
    if (head_) {
      out->set(http::field::content_length, std::to_string(res.body.size()));
    } else {
      out->body() = std::move(res.body);
      out->prepare_payload();
    }
    lowest().expires_after(s_.limits.write);
    http::async_write(stream_, *out, [self = shared_from_this(), out](beast::error_code ec, std::size_t) {
      if (ec || !out->keep_alive()) return self->finish();
      self->read_header();
    });
  }

  // Ends the TLS session politely, for a short while at most.
  void finish() {
    if (closed_) return;
    if (drain_) return drain(0);
    lowest().expires_after(std::chrono::seconds(1));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->close(); });
  }

  // Reads and drops what the client still sends, up to kDrainBytes or the
  // drain deadline; it may be closed for room meanwhile.
  static constexpr std::size_t kDrainBytes = 256 * 1024;
  void drain(std::size_t so_far) {
    if (so_far == 0) {
      set_waiting(true);
      lowest().expires_after(std::chrono::seconds(2));
    }
    if (so_far >= kDrainBytes) return close();
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            [self = shared_from_this(), so_far](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              self->drain(so_far + n);
                            });
  }

  HttpsServer::Impl& s_;
  Stream stream_;
  asio::ip::address peer_;
  std::string peer_text_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  bool head_ = false;
  bool drain_ = false;
  bool closed_ = false;
  bool waiting_ = false;
  std::list<Connection*>::iterator in_all_, in_peer_;
  // Parked by a waiting handler (I/O thread only).
  bool parked_ = false;
  std::uint64_t park_generation_ = 0;
  std::shared_ptr<Wait> wait_;
  httplib::Response fallback_;
  std::chrono::steady_clock::time_point deadline_;
  asio::steady_timer wait_timer_;
  std::multimap<std::string, std::shared_ptr<Connection>>::iterator parked_at_;
};

void HttpsServer::Impl::accept() {
  acceptor.async_accept(ioc, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping) return;
    if (ec) {
      // Out of descriptors or a connection reset before it was taken: try
      // again shortly rather than spin.
      accept_retry.expires_after(std::chrono::milliseconds(20));
      accept_retry.async_wait([this](beast::error_code e) {
        if (!e) accept();
      });
      return;
    }
    admit(std::move(socket));
    accept();
  });
}

void HttpsServer::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return;
  asio::ip::address addr = endpoint.address();
  auto make_room = [](std::list<Connection*>& list) {
    if (list.empty()) return false;
    list.front()->close();  // removes itself from the lists
    return true;
  };
  if (auto p = peers.find(addr); p != peers.end() && p->second.count >= limits.max_per_peer)
    if (!make_room(p->second.waiting)) return;  // every one of them is mid-request: refuse this one
  if (live.size() >= max_connections && !make_room(waiting)) return;
  socket.set_option(tcp::no_delay(true), ec);
  auto conn = std::make_shared<Connection>(*this, std::move(socket), addr);
  live.insert(conn.get());
  ++peers[addr].count;
  ++open;
  conn->start();
}

void HttpsServer::Impl::close_all() {
  std::vector<Connection*> all(live.begin(), live.end());
  for (Connection* c : all) c->close();
}

httplib::Response HttpsServer::Impl::handle(const BeastRequest& in, const std::string& peer,
                                            std::optional<Wait>& wait) const {
  httplib::Request req;
  req.method = std::string(in.method_string());
  std::string_view target(in.target().data(), in.target().size());
  std::size_t q = target.find('?');
  req.target = std::string(target);
  req.path = decode(target.substr(0, q), false);
  if (q != std::string_view::npos) parse_query(target.substr(q + 1), req.params);
  for (const auto& f : in) req.headers.emplace(std::string(f.name_string()), std::string(f.value()));
  req.body = in.body();
  req.remote_addr = peer;
  req.version = "HTTP/1.1";

  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  httplib::Response res;
  try {
    const CompiledRoute* route = nullptr;
    for (const auto& r : routes)
      if (r.method == method && std::regex_match(req.path, req.matches, r.re)) {
        route = &r;
        break;
      }
    if (!route) {
      for (const auto& k : known)
        if (std::regex_match(req.path, k.re)) {
          res = problem(Errc::method_not_allowed, "this resource answers " + k.allow);
          res.set_header("Allow", k.allow);
          return res;
        }
      return problem(Errc::not_found, "no such resource");
    }
    if (method == "POST") {
      const std::string& ct = req.get_header_value("Content-Type");
      if ((!req.body.empty() || !ct.empty()) && !is_json_media_type(ct))
        return problem(Errc::unsupported_media_type, "the request body must be application/json", 0,
                       "Content-Type");
    }
    if (route->waiting) {
      wait = route->waiting(req, res);
    } else {
      route->handler(req, res);
    }
    if (res.status <= 0) res.status = 200;
    if (after && !wait) after(req, res);
  } catch (...) {
    res = problem(Errc::internal, "unexpected server error");
  }
  return res;
}

HttpsServer::HttpsServer(const Certificate& cert, const PrivateKey& key, ServerLimits limits)
    : impl_(std::make_unique<Impl>(limits)) {
  SSL_CTX* ctx = impl_->tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate(ctx, cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1)
    impl_->max_connections = 0;  // bind() reports it
  else
    impl_->max_connections = limits.max_connections;
}

HttpsServer::~HttpsServer() {
  impl_->pool.stop();
  impl_->pool.join();
}

void HttpsServer::serve_routes(const Routes& routes) {
  for (const auto& r : routes.list()) {
    impl_->routes.push_back({r.method, std::regex(r.pattern), r.handler, r.waiting});
    std::string method = r.method == "GET" ? "GET, HEAD" : r.method;
    auto same = std::find_if(impl_->known.begin(), impl_->known.end(),
                             [&](const KnownPath& k) { return k.pattern == r.pattern; });
    if (same != impl_->known.end())
      same->allow += ", " + method;
    else
      impl_->known.push_back({r.pattern, std::regex(r.pattern), method});
  }
}

void HttpsServer::set_after_handler(httplib::Server::Handler after) { impl_->after = std::move(after); }

Result<int> HttpsServer::bind(const std::string& host, int port) {
  if (impl_->max_connections == 0) return fail(Errc::internal, "TLS server could not be created");
  // Connections cost descriptors, not threads: take what the hard limit allows
  // and keep some for the database, logs and outgoing calls.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      (void)::setrlimit(RLIMIT_NOFILE, &nofile);
      (void)::getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur > 128)
      impl_->max_connections = std::min<std::size_t>(impl_->max_connections, nofile.rlim_cur - 128);
  }
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return fail(Errc::bad_request, "not an IP address: " + host);
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(Errc::io_error, "cannot bind " + host + ":" + std::to_string(port) + ": " + ec.message());
  return static_cast<int>(a.local_endpoint().port());
}

void HttpsServer::stop_on_signals() {
  impl_->signals.emplace(impl_->ioc, SIGINT, SIGTERM);
  impl_->signals->async_wait([this](beast::error_code ec, int) {
    if (!ec) stop();
  });
}

void HttpsServer::run() {
  Impl& s = *impl_;
  if (!s.acceptor.is_open() || s.stopping) return;
  s.running = true;
  s.accept();
  s.ioc.run();
  s.running = false;
  // Handlers that have started finish (their answers are dropped: the client
  // retries, as after any lost connection); those not started never run.
  s.pool.stop();
  s.pool.join();
}

void HttpsServer::stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  asio::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
    s.accept_retry.cancel();
    if (s.signals) s.signals->cancel(ec);
    s.close_all();
    s.ioc.stop();
  });
}

bool HttpsServer::is_running() const { return impl_->running; }

std::size_t HttpsServer::open_connections() const { return impl_->open; }

void HttpsServer::notify(const std::string& topic) {
  Impl& s = *impl_;
  const std::uint64_t n = ++s.notify_seq;
  asio::post(s.ioc, [&s, topic, n] {
    auto& last = s.last_notify[notify_slot(topic)];
    last = std::max(last, n);
    std::vector<std::shared_ptr<Connection>> woken;
    for (auto [it, end] = s.parked.equal_range(topic); it != end; ++it) woken.push_back(it->second);
    for (auto& c : woken) c->wake();
  });
}

std::size_t HttpsServer::waiting_requests() const { return impl_->parked_count; }

}  // namespace zf::net
