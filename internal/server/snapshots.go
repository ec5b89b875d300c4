package server

import (
	"net/http"
	"time"

	"kindling/internal/cli"
)

// snapshotsReport is the admin endpoint's "snapshots" report (`kindling
// snapshots`): the SnapStart snapshots kept and their disk use.
func (s *Server) snapshotsReport(*http.Request) (any, error) {
	infos, err := s.snaps.List()
	if err != nil {
		return nil, err
	}
	out := cli.SnapshotsReport{Snapshots: []cli.SnapshotEntry{}}
	out.Restores, out.RestoreFailures = s.worker.SnapshotStats()
	for _, in := range infos {
		out.TotalBytes += in.Bytes
		out.Snapshots = append(out.Snapshots, cli.SnapshotEntry{Key: in.Key, Account: in.Account, Function: in.Function,
			Version: in.Version, Bytes: in.Bytes, Pieces: in.Pieces, Created: in.Created.UTC().Format(time.RFC3339)})
	}
	return out, nil
}
