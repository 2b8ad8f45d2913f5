package aerospiketest_test

import (
	"fmt"
	"log"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

func ExampleNewServer() {
	// Records expire only in a namespace that allows TTLs, as on a real
	// server: one with a nonzero nsup-period.
	srv, err := aerospiketest.NewServer(aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{
		Name: "test", NsupPeriod: time.Second,
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client, err := as.NewClient(srv.Host(), srv.Port())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	key, _ := as.NewKey("test", "jobs", "job-1")
	if err := client.Put(as.NewWritePolicy(0, 60), key, as.BinMap{"state": "ready"}); err != nil {
		log.Fatal(err)
	}
	rec, err := client.Get(nil, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Bins["state"])

	// Let the record expire.
	srv.AdvanceClock(2 * time.Minute)
	_, err = client.Get(nil, key)
	fmt.Println(err != nil)
	// Output:
	// ready
	// true
}

func ExampleServer_Inject() {
	srv, err := aerospiketest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := as.NewClient(srv.Host(), srv.Port())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// Fail the next write with KEY_BUSY.
	fault, err := srv.Inject(aerospiketest.Fault{
		Action:  aerospiketest.FaultFail,
		Command: aerospiketest.WriteCommand,
		Code:    aerospiketest.CodeKeyBusy,
	})
	if err != nil {
		log.Fatal(err)
	}
	key, _ := as.NewKey("test", "jobs", 1)
	wp := as.NewWritePolicy(0, 0)
	wp.MaxRetries = 0
	err = client.Put(wp, key, as.BinMap{"a": 1})
	fmt.Println(err.(*as.AerospikeError).ResultCode == 14, fault.Fired())
	// Output: true 1
}
