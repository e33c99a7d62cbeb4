# Test helpers for conflux: spawn conflux and conflux-mock on free ports, talk HTTP to them, clean up.
package CfTest;
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Scalar::Util ();
use Test::More;
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    bindir empty_port spawn spawn_mock spawn_conflux
    http_get http_request http_parallel decode_json_ok tmpdir write_file
);

use Cwd qw(abs_path);
use File::Basename qw(dirname);
my $ROOT = abs_path(dirname(__FILE__) . '/../..');

# The build directory under test: CONFLUX_BUILD (relative to the repo root or absolute), default "build".
sub bindir {
    my $b = $ENV{CONFLUX_BUILD} // 'build';
    return $b =~ m{^/} ? $b : "$ROOT/$b";
}

# A scratch directory for this test file, kept when CF_TEST_KEEP=1 (its path is printed).
my $TMPDIR;
sub tmpdir {
    $TMPDIR //= tempdir('conflux-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CF_TEST_KEEP});
    return $TMPDIR;
}

sub write_file {
    my ($path, $content) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $content;
    close $fh;
    return $path;
}

# A TCP port nobody listens on right now (bind to port 0, read it, close).
sub empty_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1)
        or die "cannot bind: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub _port_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# every live guard, weakly: END stops them while Test::Builder can still print their logs
our @GUARDS;
END {
    for my $g (grep { defined } @GUARDS) {
        $g->finish;
    }
}

# spawn(cmd => [...], port => N, name => 'x'): starts a process with its output in a log file, waits until
# the port accepts connections (up to 15 s), dies with the log if the process exits first. Returns a guard:
# when it goes out of scope the process gets TERM, then KILL after 5 s. On a failing test file, the log is
# printed as diagnostics; CF_TEST_KEEP=1 keeps the logs and says where.
sub spawn {
    my %args = @_;
    my $name = $args{name} // 'proc';
    my $log = tmpdir() . "/$name-$$-" . int(rand(1e9)) . ".log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or die;
        open STDERR, '>&', \*STDOUT or die;
        exec @{ $args{cmd} } or die "exec $args{cmd}[0]: $!";
    }
    my $guard = bless { pid => $pid, port => $args{port}, log => $log, name => $name }, 'CfTest::Guard';
    push @GUARDS, $guard;
    Scalar::Util::weaken($GUARDS[-1]);
    my $deadline = time + ($args{timeout} // 15);
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $guard->{pid} = undef;
            die "$name exited early (status $?):\n" . $guard->log_text;
        }
        last if defined $args{port} && _port_open($args{port});
        die "$name did not listen on port $args{port} in time:\n" . $guard->log_text if time > $deadline;
        sleep 0.02;
    }
    return $guard;
}

# spawn_mock($yaml): conflux-mock on a free port; "listen:" is added unless the YAML has one.
sub spawn_mock {
    my ($yaml, %opts) = @_;
    my $port = empty_port();
    $yaml = "listen: 127.0.0.1:$port\n$yaml" unless $yaml =~ /^listen:/m;
    ($port) = $yaml =~ /^listen:\s*\S*:(\d+)/m;
    my $file = write_file(tmpdir() . "/mock-$port.yaml", $yaml);
    return spawn(name => "mock-$port", port => $port, cmd => [bindir() . '/conflux-mock', '-c', $file], %opts);
}

# spawn_conflux($yaml): conflux on a free port on 127.0.0.1; a "listen:" block is added unless the YAML has one.
sub spawn_conflux {
    my ($yaml, %opts) = @_;
    my $port = empty_port();
    $yaml = "listen:\n  - host: 127.0.0.1\n    port: $port\n$yaml" unless $yaml =~ /^listen:/m;
    ($port) = $yaml =~ /^listen:\s*\n\s*-\s*(?:host:\s*\S+\s*\n\s*)?port:\s*(\d+)/m unless $opts{port};
    $port = $opts{port} if $opts{port};
    my $file = write_file(tmpdir() . "/conflux-$port.yaml", $yaml);
    my $g = spawn(name => "conflux-$port", port => $port, cmd => [bindir() . '/conflux', '-c', $file, @{ $opts{args} // [] }], %opts);
    $g->{config} = $file;
    return $g;
}

# http_request($method, $url, \%headers, $body): {status, reason, headers => {lc name => value}, body, elapsed}.
# status 599 means a connection-level failure (HTTP::Tiny's convention); body then holds the error.
# HTTP::Tiny retries an idempotent request once when the connection ends early: to see an upstream fault as a
# client does, talk to the mock over a raw socket instead.
sub http_request {
    my ($method, $url, $headers, $body) = @_;
    my $ua = HTTP::Tiny->new(timeout => 30, keep_alive => 0, max_redirect => 0);
    my $t0 = time;
    my $res = $ua->request($method, $url, { headers => $headers // {}, defined $body ? (content => $body) : () });
    my %h;
    while (my ($k, $v) = each %{ $res->{headers} }) {
        $h{lc $k} = ref $v ? join(', ', @$v) : $v;
    }
    return { status => $res->{status}, reason => $res->{reason}, headers => \%h, body => $res->{content} // '',
             elapsed => time - $t0 };
}

sub http_get {
    my ($url, $headers) = @_;
    return http_request('GET', $url, $headers);
}

# http_parallel($n, $url, headers => {...}): $n concurrent GETs (curl --parallel, one connection each).
# Returns a list of {status, elapsed} plus the wall time of the whole batch.
sub http_parallel {
    my ($n, $url, %opts) = @_;
    my @hdr = map { ('-H', "$_: $opts{headers}{$_}") } keys %{ $opts{headers} // {} };
    my @cmd = ('curl', '-s', '--no-progress-meter', '--parallel', '--parallel-immediate', '--parallel-max', $n,
               '-w', '%{http_code} %{time_total}\n', @hdr, ('-o', '/dev/null', '--url', $url) x $n);
    my $t0 = time;
    open my $fh, '-|', @cmd or die "curl: $!";
    my @res;
    while (my $line = <$fh>) {
        my ($code, $t) = split ' ', $line;
        push @res, { status => $code, elapsed => $t };
    }
    close $fh;
    return (\@res, time - $t0);
}

# Decodes JSON or fails the test (returns undef).
sub decode_json_ok {
    my ($text, $name) = @_;
    my $v = eval { JSON::PP->new->decode($text) };
    ok(defined $v, $name // 'body is JSON') or diag("not JSON: $@\n$text");
    return $v;
}

package CfTest::Guard;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub log_path { $_[0]{log} }
sub url  { my ($self, $path) = @_; return "http://127.0.0.1:$self->{port}" . ($path // '') }

sub log_text {
    my $self = shift;
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return scalar <$fh>;
}

sub signal {
    my ($self, $sig) = @_;
    kill $sig, $self->{pid} if $self->{pid};
}

# Sends TERM and waits (up to $timeout s); returns the exit status, or undef if it had to be killed.
sub stop {
    my ($self, $timeout) = @_;
    my $pid = $self->{pid} or return $self->{status};
    kill 'TERM', $pid;
    my $deadline = time + ($timeout // 5);
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{pid} = undef;
            return $self->{status} = $?;
        }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $self->{pid} = undef;
    return $self->{status} = undef;
}

sub DESTROY {
    my $self = shift;
    local ($?, $@, $!);
    $self->finish;
}

# Stops the process and, once, shows where its log is (CF_TEST_KEEP=1) or its tail when the test file is failing.
sub finish {
    my $self = shift;
    return if $self->{finished}++;
    $self->stop;
    # Under a sanitized build (make test-asan) any report from a process fails the test file: the processes are
    # the product, and their exit status is not otherwise looked at.
    if ($ENV{CONFLUX_SANITIZED}) {
        my $text = $self->log_text;
        if ($text =~ /(ERROR: (?:AddressSanitizer|LeakSanitizer)|runtime error:)/) {
            my $at = index($text, $1);
            Test::More->builder->ok(0, "$self->{name}: no sanitizer report");
            Test::More->builder->diag(substr($text, $at > 200 ? $at - 200 : 0, 6000));
        }
    }
    my $tb = Test::More->builder;
    if ($ENV{CF_TEST_KEEP}) {
        $tb->diag("$self->{name} log kept: $self->{log}");
    } elsif (!$tb->is_passing) {
        my $text = $self->log_text;
        $text = substr($text, -4000) if length $text > 4000;
        $tb->diag("--- $self->{name} log (tail) ---\n$text") if length $text;
    }
}

1;
