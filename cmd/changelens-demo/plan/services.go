package plan

// The demo shop: four services with a few routes each. Latencies and body
// sizes are log-normal per route (median and sigma of the natural log), and
// each route makes a few downstream calls that become CLIENT/INTERNAL child
// spans.

// CallKind is what a child span of a request stands for.
type CallKind int

const (
	// CallDB is a SQL query (CLIENT span, db.* attributes).
	CallDB CallKind = iota
	// CallCache is a Redis command (CLIENT span, db.system.name=redis).
	CallCache
	// CallHTTP is an outgoing HTTP request (CLIENT span, http.* attributes).
	CallHTTP
	// CallInternal is in-process work (INTERNAL span).
	CallInternal
)

// Call is a downstream call a route makes.
type Call struct {
	Kind CallKind
	// Operation is the SQL verb / Redis command / HTTP method / internal span name.
	Operation string
	// Target is the table (DB), key prefix (cache), or URL template (HTTP).
	Target string
	// Server is the peer address: the DB host, a downstream service, an external API.
	Server string
	Port   int
	// Prob is the probability the call happens in a request.
	Prob float64
	// Share is the typical fraction of the request's duration the call takes.
	Share float64
}

// Route is an HTTP route a service serves.
type Route struct {
	Method, Path string
	// Weight is the route's share of the service's requests.
	Weight float64
	// MedianMS and Sigma parameterize the log-normal latency.
	MedianMS, Sigma float64
	// ClientErrorRate is the probability of a 4xx answer (not an error).
	ClientErrorRate float64
	// RespBytes and RespSigma parameterize the log-normal size of a
	// successful response body; ReqBytes and ReqSigma that of the request
	// body (zero for a route without one).
	RespBytes, RespSigma float64
	ReqBytes, ReqSigma   float64
	Calls                []Call
}

// Service is one of the demo services.
type Service struct {
	Name string
	// Major is the major version; releases bump the minor (and the patch for fixes).
	Major int
	// DeploysPerWeek is the mean number of regular production deployments per week.
	DeploysPerWeek float64
	// BaseErrorRate is the probability of a 5xx answer of a healthy version.
	BaseErrorRate float64
	Routes        []Route
}

// Services is the demo catalog, in a fixed order.
func Services() []Service {
	return []Service{
		{
			Name: "storefront", Major: 3, DeploysPerWeek: 7, BaseErrorRate: 0.005,
			Routes: []Route{
				{Method: "GET", Path: "/", Weight: 0.30, MedianMS: 45, Sigma: 0.45, ClientErrorRate: 0.002, RespBytes: 48_000, RespSigma: 0.2, Calls: []Call{
					{Kind: CallCache, Operation: "GET", Target: "page", Server: "redis", Port: 6379, Prob: 0.9, Share: 0.08},
					{Kind: CallHTTP, Operation: "GET", Target: "/products", Server: "catalog", Port: 8080, Prob: 0.8, Share: 0.5},
				}},
				{Method: "GET", Path: "/products/{id}", Weight: 0.30, MedianMS: 60, Sigma: 0.5, ClientErrorRate: 0.02, RespBytes: 32_000, RespSigma: 0.3, Calls: []Call{
					{Kind: CallCache, Operation: "GET", Target: "product", Server: "redis", Port: 6379, Prob: 0.9, Share: 0.08},
					{Kind: CallHTTP, Operation: "GET", Target: "/products/{id}", Server: "catalog", Port: 8080, Prob: 0.9, Share: 0.55},
				}},
				{Method: "GET", Path: "/search", Weight: 0.22, MedianMS: 120, Sigma: 0.6, ClientErrorRate: 0.005, RespBytes: 60_000, RespSigma: 0.6, Calls: []Call{
					{Kind: CallHTTP, Operation: "GET", Target: "/products", Server: "catalog", Port: 8080, Prob: 1, Share: 0.7},
				}},
				{Method: "POST", Path: "/cart/items", Weight: 0.18, MedianMS: 80, Sigma: 0.5, ClientErrorRate: 0.01, RespBytes: 2_500, RespSigma: 0.4, ReqBytes: 180, ReqSigma: 0.3, Calls: []Call{
					{Kind: CallCache, Operation: "HSET", Target: "cart", Server: "redis", Port: 6379, Prob: 1, Share: 0.15},
					{Kind: CallInternal, Operation: "render cart", Prob: 0.7, Share: 0.2},
				}},
			},
		},
		{
			Name: "checkout", Major: 1, DeploysPerWeek: 5, BaseErrorRate: 0.005,
			Routes: []Route{
				{Method: "POST", Path: "/checkout", Weight: 0.35, MedianMS: 220, Sigma: 0.5, ClientErrorRate: 0.01, RespBytes: 1_800, RespSigma: 0.35, ReqBytes: 1_200, ReqSigma: 0.4, Calls: []Call{
					{Kind: CallDB, Operation: "INSERT", Target: "orders", Server: "checkout-db", Port: 5432, Prob: 1, Share: 0.25},
					{Kind: CallHTTP, Operation: "POST", Target: "/payments", Server: "payments", Port: 8080, Prob: 0.95, Share: 0.55},
				}},
				{Method: "GET", Path: "/checkout/{id}", Weight: 0.45, MedianMS: 35, Sigma: 0.4, ClientErrorRate: 0.015, RespBytes: 3_500, RespSigma: 0.4, Calls: []Call{
					{Kind: CallDB, Operation: "SELECT", Target: "orders", Server: "checkout-db", Port: 5432, Prob: 1, Share: 0.6},
				}},
				{Method: "POST", Path: "/checkout/{id}/confirm", Weight: 0.20, MedianMS: 150, Sigma: 0.55, ClientErrorRate: 0.01, RespBytes: 6_000, RespSigma: 0.3, ReqBytes: 300, ReqSigma: 0.3, Calls: []Call{
					{Kind: CallDB, Operation: "UPDATE", Target: "orders", Server: "checkout-db", Port: 5432, Prob: 1, Share: 0.3},
					{Kind: CallInternal, Operation: "render receipt", Prob: 1, Share: 0.2},
				}},
			},
		},
		{
			Name: "catalog", Major: 2, DeploysPerWeek: 6, BaseErrorRate: 0.005,
			Routes: []Route{
				{Method: "GET", Path: "/products", Weight: 0.40, MedianMS: 40, Sigma: 0.5, ClientErrorRate: 0.003, RespBytes: 24_000, RespSigma: 0.5, Calls: []Call{
					{Kind: CallDB, Operation: "SELECT", Target: "products", Server: "catalog-db", Port: 5432, Prob: 1, Share: 0.6},
				}},
				{Method: "GET", Path: "/products/{id}", Weight: 0.45, MedianMS: 18, Sigma: 0.4, ClientErrorRate: 0.03, RespBytes: 4_000, RespSigma: 0.3, Calls: []Call{
					{Kind: CallCache, Operation: "GET", Target: "product", Server: "redis", Port: 6379, Prob: 1, Share: 0.15},
					{Kind: CallDB, Operation: "SELECT", Target: "products", Server: "catalog-db", Port: 5432, Prob: 0.25, Share: 0.5},
				}},
				{Method: "GET", Path: "/categories", Weight: 0.15, MedianMS: 12, Sigma: 0.35, ClientErrorRate: 0.001, RespBytes: 1_500, RespSigma: 0.15, Calls: []Call{
					{Kind: CallDB, Operation: "SELECT", Target: "categories", Server: "catalog-db", Port: 5432, Prob: 1, Share: 0.6},
				}},
			},
		},
		{
			Name: "payments", Major: 4, DeploysPerWeek: 3, BaseErrorRate: 0.005,
			Routes: []Route{
				{Method: "POST", Path: "/payments", Weight: 0.60, MedianMS: 350, Sigma: 0.45, ClientErrorRate: 0.02, RespBytes: 900, RespSigma: 0.2, ReqBytes: 600, ReqSigma: 0.25, Calls: []Call{
					{Kind: CallHTTP, Operation: "POST", Target: "/v1/payment_intents", Server: "api.stripe.example", Port: 443, Prob: 1, Share: 0.75},
					{Kind: CallDB, Operation: "INSERT", Target: "payments", Server: "payments-db", Port: 5432, Prob: 1, Share: 0.1},
				}},
				{Method: "GET", Path: "/payments/{id}", Weight: 0.30, MedianMS: 25, Sigma: 0.35, ClientErrorRate: 0.01, RespBytes: 1_100, RespSigma: 0.2, Calls: []Call{
					{Kind: CallDB, Operation: "SELECT", Target: "payments", Server: "payments-db", Port: 5432, Prob: 1, Share: 0.6},
				}},
				{Method: "POST", Path: "/refunds", Weight: 0.10, MedianMS: 400, Sigma: 0.5, ClientErrorRate: 0.02, RespBytes: 700, RespSigma: 0.2, ReqBytes: 350, ReqSigma: 0.2, Calls: []Call{
					{Kind: CallHTTP, Operation: "POST", Target: "/v1/refunds", Server: "api.stripe.example", Port: 443, Prob: 1, Share: 0.75},
					{Kind: CallDB, Operation: "INSERT", Target: "refunds", Server: "payments-db", Port: 5432, Prob: 1, Share: 0.1},
				}},
			},
		},
	}
}
