//! HTTP to PagerDuty: the agent and one request ([`send`]), the same request as a `curl` command
//! line ([`curl`]) and name resolution without a thread per request ([`resolve`]).

pub mod curl;
pub mod options;
pub mod resolve;
pub mod send;
