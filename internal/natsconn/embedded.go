package natsconn

import (
	"fmt"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// StartEmbedded runs a NATS server with JetStream in this process, on a
// random loopback port, storing in storeDir. The demo and the tests use it;
// the caller shuts it down.
func StartEmbedded(storeDir string) (*natsserver.Server, error) { return StartEmbeddedOn(storeDir, -1) }

// StartEmbeddedOn is StartEmbedded on a given port (-1: any), so a test can
// stop a server and start it again where its clients reconnect.
func StartEmbeddedOn(storeDir string, port int) (*natsserver.Server, error) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("start the embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("the embedded NATS server did not start within 10s")
	}
	return srv, nil
}
