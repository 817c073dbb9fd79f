// Package filestore is the durable session store of a single instance: a
// state.Store that writes every session and per-user state through to a
// bbolt file (fsynced, with concurrent writers sharing commits) and serves
// every read from a state.Memory loaded from the file at Open. Access-time
// refreshes (Touch) are written in the background; records can be sealed
// with AES-256-GCM; a large file loads in the background while the store
// already serves.
//
// The record format (one bbolt value per session or user) is described in
// codec.go; Open refuses a file of a newer format, an encrypted file
// without its key, and a damaged one, naming the file.
package filestore
