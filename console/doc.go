// Package console serves the Batch jobs page, Sluice's web console, at /console/.
//
// The page is plain HTML, CSS and JavaScript modules embedded in the binary: there is
// no build step and nothing is fetched from elsewhere. It holds no data of its own.
// It talks to the public API (/v1) with fetch, like any client, and sends the API key
// the user types, which it keeps in sessionStorage for the browser session. So the
// page is served without authentication, and the API calls carry the key.
//
// Every answer carries a strict Content-Security-Policy (scripts, styles and
// connections from this origin only; no inline script or style) and
// Cache-Control: no-cache, with an ETag so a reload revalidates cheaply.
package console
