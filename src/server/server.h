// Entry point of `mandate serve`: opens the store, loads the state, listens, and serves until
// SIGINT or SIGTERM, then shuts down gracefully.
#ifndef MANDATE_SERVER_SERVER_H_
#define MANDATE_SERVER_SERVER_H_

#include "absl/status/status.h"

#include "server/config.h"

namespace mandate::server {

// Runs the server described by `config` until a signal stops it. Prints the URL (one line starting
// "Mandate listening on http://") and a hint about the API keys to stdout once it accepts requests;
// logs go to stderr. Errors: no API key configured, the data directory unusable or in use, the
// stored state or the --policy/--facts files invalid, the address not bindable.
absl::Status RunServer(const ServerConfig& config);

}  // namespace mandate::server

#endif  // MANDATE_SERVER_SERVER_H_
