// Package dashboard is a web dashboard for a [beanspike.Queue]: it shows
// the store's tubes and jobs, and lets a person kick, pause, resume and
// delete them.
//
// # What it shows
//
//   - The overview lists the tubes with their counts of ready (and
//     urgent), reserved, delayed, buried jobs, the Reserve calls waiting,
//     whether the tube is paused, the jobs ever put and the rate of puts
//     per second. A small script refreshes it every two seconds from
//     api/tubes, a JSON version of the same list; without the script the
//     page is complete, and a reload refreshes it.
//   - A tube's page (tube?name=NAME) shows its stats and its next ready,
//     delayed and buried jobs, as PeekReady, PeekDelayed and PeekBuried
//     find them, with their bodies.
//   - A job's page (job?id=ID) shows StatsJob and the body.
//
// A body is shown as text when its first bytes (up to [WithBodyLimit],
// 1 KiB by default) are valid UTF-8 without control characters (tabs and
// line breaks aside) or characters that reverse the direction of text,
// and as a hex dump otherwise; the page says when it is cut.
//
// The rate of puts is computed on the server from
// [beanspike.TubeStats.TotalJobs] at two refreshes at least a second
// apart, by whoever refreshes: it is the average since the previous
// refresh, and a dash until there was one.
//
// # Actions
//
// Kick up to N jobs of a tube, kick one job, pause a tube for a while,
// resume it, delete a job, delete a tube. Each is a form that POSTs to
// the action's path; the first POST changes nothing and answers a page
// that asks to confirm, and only its form, sent with confirm=yes, does
// the action. Everything works without JavaScript. Bad input (a count
// below 1, a bad tube name or job ID, a pause that is not a duration)
// gets a 400 page and changes nothing; a missing job or tube a 404 page;
// a job that a client has reserved, which cannot be deleted, a 409 page;
// a store that is unavailable, closed or slower than [WithTimeout] a 503
// page. An action never creates a tube: pausing one that does not exist
// is a 404.
//
// # Mounting
//
// [New] returns an [http.Handler] that serves every path under its
// prefix, "/" by default. To serve it under /ui/ beside other handlers:
//
//	h, err := dashboard.New(q, dashboard.WithPrefix("/ui/"), dashboard.WithToken(token))
//	if err != nil { ... }
//	mux.Handle("/ui/", h)
//
// The handler writes its links with the prefix, so mount it at that path
// and not behind [http.StripPrefix].
//
// # Security
//
// Without [WithToken] or [WithTokenFunc], anyone who can reach the
// handler can see every job's body and delete every job: keep it on a
// loopback or private address, or set a token. With a token, every
// request except the login form and the style sheet and script must carry
// it, in an "Authorization: Bearer TOKEN" header or in the cookie that the
// login form sets; others get 401 (the login form, for a page). The token
// is compared in constant time. The cookie holds a keyed hash of the
// token, not the token: it is HttpOnly, SameSite=Strict, limited to the
// prefix and Secure when the request came over TLS, and it stops working
// when the token changes (see WithTokenFunc) or the process restarts.
// There is no limit on login attempts: use a long random token, and serve
// the dashboard over TLS (a reverse proxy) on any network you do not
// trust.
//
// Every action and the logout are POST only, and must carry the form
// token, a random value made by [New] and put in the forms of its pages
// (which a page of another site cannot read); requests that a browser
// marks as cross-site are refused as well ([http.CrossOriginProtection]).
// Either failure is a 403 that changes nothing.
//
// Pages are rendered by [html/template], so a job body, a tube name or a
// bury reason is always escaped: a body holding <script> shows as text
// and never runs. A Content-Security-Policy that allows only the
// dashboard's own script and style sheet, and no framing, guards this
// further.
//
// # Limits
//
// The overview calls StatsTube once per tube (up to eight at a time) on
// every refresh, and lists only the first [MaxTubes] tubes in name order.
// A tube's page shows one job per state, the next one, as the Queue's
// Peek calls give no more. Reserved jobs cannot be listed, as no Queue
// call finds them, but a job's page shows one by ID. The dashboard is one
// client of the store: it reserves nothing, and cannot delete a job that
// another client holds. The rates are per handler and kept in memory.
package dashboard
