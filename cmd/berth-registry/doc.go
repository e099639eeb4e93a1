// Command berth-registry serves an OCI distribution-spec registry over a
// berth content store:
//
//	berth-registry serve [--listen 127.0.0.1:5000] [--root /var/lib/berth/registry]
//	                     [--tls-cert FILE --tls-key FILE] [--htpasswd FILE] [--read-only]
//
// The root holds content/ (blobs, package content) and registry/
// (repository metadata, package registry). The command only parses flags,
// listens (with TLS when given) and shuts down gracefully on SIGINT or
// SIGTERM; everything else is package registry. It is temporary, until the
// `berth registry serve` subcommand of the berth CLI exists.
package main
