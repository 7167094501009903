//! HTTP to PagerDuty: the agent and one request ([`send`]), what PagerDuty's answer means
//! ([`verdict`]), the same request as a `curl` command line ([`curl`]) and name resolution
//! without a thread per request ([`resolve`]).

pub mod curl;
pub mod resolve;
pub mod send;
pub mod verdict;
