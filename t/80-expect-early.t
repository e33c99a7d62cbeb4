# Expect: 100-continue for a request that no route takes is answered at once, whatever the request-target looks
# like: a client must never be invited to upload a body that conflux will refuse.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use IO::Socket::INET;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;
my $gw = spawn_conflux(<<"EOF");
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
EOF

# the first line the server sends after a head that expects 100-continue (the body is not sent)
sub first_line {
    my ($target) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port, Timeout => 5) or die $!;
    syswrite($s, "POST $target HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n");
    my $got = '';
    IO::Select->new($s)->can_read(3) and sysread($s, $got, 4096);
    return ($got =~ /\A([^\r\n]*)/)[0] // '';
}

like(first_line('/nowhere'), qr{^HTTP/1\.1 404 }, 'a short unknown path: 404 at once (the guard holds)');
like(first_line('/nowhere/' . ('a' x 2100)), qr{^HTTP/1\.1 404 }, 'an unknown path of 2 KiB or more: 404 at once, not 100 Continue');
like(first_line('/u/' . ('a' x 2100) . '/more'), qr{^HTTP/1\.1 404 }, 'a long path no route matches: 404 at once');
like(first_line('http://x/nowhere'), qr{^HTTP/1\.1 4\d\d }, 'an absolute-form target no route takes: a 4xx at once, not 100 Continue');

done_testing;
