#include <cstdlib>

#include <herald/common/strings.h>
#include <herald/testing/tls.h>

namespace herald::testing {

bool MakeTestCa(const std::string& dir, const std::string& name) {
  const std::string p = StrCat(dir, "/", name);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script = StrCat(
      "set -e; cd '", dir, "';", "openssl req -x509 ", key, " -keyout ", p, "-ca.key -out ", p,
      "-ca.pem -days 1 -subj /CN=", name, "-ca;", "openssl req ", key, " -keyout ", p,
      "-server.key -out ", p, "-server.csr -subj /CN=localhost;",
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > ", p, "-san.ext;",
      "openssl x509 -req -in ", p, "-server.csr -CA ", p, "-ca.pem -CAkey ", p,
      "-ca.key -CAcreateserial -out ", p, "-server.pem -days 1 -extfile ", p, "-san.ext;",
      "openssl req ", key, " -keyout ", p, "-client.key -out ", p,
      "-client.csr -subj /CN=agency-service;", "openssl x509 -req -in ", p, "-client.csr -CA ", p,
      "-ca.pem -CAkey ", p, "-ca.key -CAcreateserial -out ", p, "-client.pem -days 1");
  const std::string command = StrCat("bash -c \"", script, "\" >/dev/null 2>&1");
  return std::system(command.c_str()) == 0;
}

}  // namespace herald::testing
