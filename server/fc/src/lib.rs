//! Function Compute 3.0 (API 2023-03-30) for the `fc` runtime. So far: the request signer,
//! checked against Alibaba's published test vectors.

pub mod signer;
