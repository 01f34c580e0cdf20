package api

import (
	"fmt"
	"math"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
)

// Rate is a limit: N requests per Per, with bursts of up to N. Limits are
// enforced with GCRA (the generic cell rate algorithm, go-redis/redis_rate)
// in Redis, so every api process shares them and a client's allowance
// refills smoothly instead of all at once at a window's edge.
type Rate struct {
	N   int
	Per time.Duration
}

// Route-class limits of authenticated callers: a person clicking through
// the apps stays far below 600 requests a minute; a lab partner's
// interface may send a day's backlog at once.
var (
	defaultUserRate    = Rate{N: 600, Per: time.Minute}
	defaultPartnerRate = Rate{N: 6000, Per: time.Minute}
)

// rateLimit spends one request of key's allowance and refuses past it
// with 429 and Retry-After. Without Redis (some unit tests) it allows.
func (s *Server) rateLimit(c *gin.Context, key string, r Rate, detail string) error {
	// Router builds the limiter when there is a Redis.
	if s.limiter == nil || r.N <= 0 {
		return nil
	}
	res, err := s.limiter.Allow(c.Request.Context(), s.RedisPrefix+key,
		redis_rate.Limit{Rate: r.N, Burst: r.N, Period: r.Per})
	if err != nil {
		return unavailable(err)
	}
	if res.Allowed == 0 {
		c.Header("Retry-After", fmt.Sprint(int(math.Ceil(res.RetryAfter.Seconds()))))
		return newProblem(KindTooMany, "too-many-requests", "Too many requests", detail)
	}
	return nil
}
