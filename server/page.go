package server

import (
	_ "embed"
	"net/http"
)

//go:embed page.html
var pageHTML []byte

// page serves the web page: static, with no user data in it (every value it shows is set by its script
// as text, never as HTML), and a policy that allows only this origin.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(pageHTML)
}
