// Throw-away certificate authorities for TLS tests, made with the openssl command.
//
//   ASSERT_TRUE(testing::MakeTestCa(dir, "first"));
//   // dir/first-ca.pem, dir/first-server.{pem,key}, dir/first-client.{pem,key}
#pragma once

#include <string>

namespace herald::testing {

// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate (CN
// agency-service), all signed by that CA and valid for a day, as PEM files in `dir` named
// <name>-ca.pem, <name>-server.{pem,key} and <name>-client.{pem,key}. False when openssl fails.
bool MakeTestCa(const std::string& dir, const std::string& name);

}  // namespace herald::testing
