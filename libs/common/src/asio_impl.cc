// The one translation unit that compiles Boost.Asio and Boost.Beast. Every other file includes
// their headers with BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION set
// (see herald::common's compile definitions), which keeps per-file build times down.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
