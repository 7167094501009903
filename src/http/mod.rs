//! HTTP to PagerDuty: the agent and one request ([`send`]), what PagerDuty's answer means
//! ([`verdict`]), the same request as a `curl` command line ([`curl`]) and name resolution
//! without a thread per request ([`resolve`]).

pub(crate) mod curl;
pub mod options;
pub(crate) mod resolve;
pub(crate) mod send;
pub(crate) mod verdict;
