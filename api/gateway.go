package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// securityHeaders sets what every answer carries: the API serves JSON
// about patients, never pages, so nothing may frame it, sniff it, cache
// it or send its address on.
//
// Strict-Transport-Security goes only on answers to requests that came
// over TLS: RFC 6797 (section 7.2) has browsers ignore it over plain
// HTTP, and sending it there would tell a reader of the headers that the
// answer they got was protected when it was not. Behind a proxy that
// ends TLS, the proxy is the one the browser talks to, and it sets HSTS.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	if c.Request.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// corsHeaders lets the web and mobile apps' origins (and only those) call
// the API from a browser: a preflight from a listed origin is answered 204
// with what it may send; any other origin gets no CORS headers, so the
// browser keeps the answer from it.
func corsHeaders(origins []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			if c.Request.Method == http.MethodOptions && origin != "" {
				c.AbortWithStatus(http.StatusForbidden)
				return
			}
			c.Next()
			return
		}
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "X-Request-ID, Idempotent-Replayed, Retry-After, ETag")
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, PATCH")
			h.Set("Access-Control-Allow-Headers", strings.Join([]string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID", "If-Match"}, ", "))
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}
