// Package metadata is berth's crash-safe metadata store: a thin layer over
// bbolt for <data-root>/metadata.db, which holds image references,
// containers, networks, volumes and the reference counts the garbage
// collector reads.
//
// It owns the file, its lock, transactions, the nested-bucket addressing
// used by every domain, the schema version with its migrations, and the
// reference-counting records (Track, IncRef, DecRef, Refs, Unreferenced,
// Forget, ReleaseHolder).
//
// What it must not do: it knows nothing about what domains store (no image,
// container or network types here) and never touches files other than
// metadata.db. Domains own their top-level buckets; the names "meta",
// "refs" and "refs-by-holder" are reserved for this package.
//
// Crash safety comes from bbolt: a transaction commits atomically (copy on
// write pages, fsync, then a new meta page), so after a crash or SIGKILL the
// file holds exactly the transactions that committed. The crash test in
// this package kills a writer mid-transaction to check it.
//
// Entry points:
//
//	db, err := metadata.Open(filepath.Join(root, "metadata.db"),
//		metadata.WithMigrations(migrations...))
//	defer db.Close()
//	err = db.Update(ctx, func(tx *metadata.Tx) error {
//		if err := metadata.PutJSON(tx, []string{"images"}, id, rec); err != nil {
//			return err
//		}
//		return metadata.IncRef(tx, "blob", layerDigest, "image/"+id)
//	})
//	err = db.View(ctx, func(tx *metadata.Tx) error {
//		return metadata.GetJSON(tx, []string{"images"}, id, &rec)
//	})
//
// Errors are classified with errdefs: a missing key is NotFound, a write in
// a read-only transaction FailedPrecondition, a database locked by another
// process Unavailable.
package metadata
