// Package app is the information-sharing app of the record-sharing example
// (the seed's 信息共享应用). Patients and doctors use it to register, upload,
// authorise, revoke and view records.
//
// A user's key pair is made at registration and handed to the user; the app
// keeps no user private key (claim 1: 第一私钥由预设请求的发起者提供). For each
// request the user's key makes signature 1 and the app's own key makes
// signature 2, bound to the session agreed with the access layer; the
// request travels sealed under the session key. The answer must carry
// signature 5 from the access layer, bound to the same session, and must
// answer this very request (its digest), within the validity window.
//
// # Secrets
//
// The app's private key, the session key and the temporary key pair of the
// key agreement are secret; users' private keys pass through only as
// arguments. Logs carry fingerprints, sizes and signature prefixes only.
package app
