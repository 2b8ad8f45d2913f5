package dashboard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/dashboard"
)

// The dashboard of a store, mounted under /ui/ beside other handlers and
// protected by a token. A person opens /ui/ in a browser and logs in with
// the token; a program sends it as a bearer token.
func Example() {
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Put(context.Background(), "emails", []byte("welcome alice")); err != nil {
		log.Fatal(err)
	}

	h, err := dashboard.New(q, dashboard.WithPrefix("/ui/"), dashboard.WithToken("a-long-random-token"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", h)
	srv := httptest.NewServer(mux) // in a program: http.ListenAndServe("127.0.0.1:8080", mux)
	defer srv.Close()

	for _, token := range []string{"", "a-long-random-token"} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/ui/api/tubes", nil)
		if err != nil {
			log.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Printf("token %q: %s\n", token, res.Status)
	}
	// Output:
	// token "": 401 Unauthorized
	// token "a-long-random-token": 200 OK
}
