// The one translation unit that compiles Asio's and Beast's out-of-line implementation
// (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION): every other file only
// sees declarations, which keeps the build fast on small machines.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
