// Package redisstore is the session store shared by several instances: a
// state.Store kept in Redis (a single server, Sentinel or Cluster, through
// go-redis), with a local near-cache in front that every write invalidates
// on all instances over pub/sub. Writes are compare-and-set Lua scripts on
// the record's version, so concurrent writers on several instances lose no
// update; while Redis is unreachable, writes fail with state.ErrUnavailable
// and near-cached sessions are served for a bounded time.
//
// It also offers FailureWindow, a failure counter in a sliding window that
// every instance sharing the Redis shares.
package redisstore
