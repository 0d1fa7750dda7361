// Entry point of `mandate serve`: opens the store, loads the state, listens, and serves until
// SIGINT or SIGTERM, then shuts down gracefully.
#ifndef MANDATE_SERVER_SERVER_H_
#define MANDATE_SERVER_SERVER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "server/config.h"
#include "store/store.h"

namespace mandate::server {

// Runs the server described by `config` until a signal stops it. Prints the URL (one line starting
// "Mandate listening on http://") and a hint about the API keys to stdout once it accepts requests;
// logs go to stderr. Errors: no API key configured, the data directory unusable or in use, the
// stored state or the --policy/--facts files invalid, the address not bindable.
absl::Status RunServer(const ServerConfig& config);

// The store `config` names: PostgreSQL for a [store] url (migrating it unless auto_migrate is
// off), else SQLite in the data directory.
absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const ServerConfig& config);

}  // namespace mandate::server

#endif  // MANDATE_SERVER_SERVER_H_
