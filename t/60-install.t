# `cmake --install` (staged with DESTDIR) puts the binaries, the unit, the sample config and the schema in place, and
# never overwrites an existing config; `cpack` builds a .deb with the right files, dependencies and conffiles.
use strict;
use warnings;
use FindBin;
use JSON::PP;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $root = "$FindBin::Bin/..";
my $build = bindir();
plan skip_all => "$build/conflux is not built" unless -x "$build/conflux" && -f "$build/cmake_install.cmake";
my %have = map { my $t = $_; ($t => scalar grep { -x "$_/$t" } split /:/, $ENV{PATH}) } qw(cmake cpack dpkg-deb);
plan skip_all => 'cmake is not installed' unless $have{cmake};

my $dir = tmpdir();

# the content of a file, or undef when there is none (the checks below say which file is missing)
sub content { -f $_[0] ? slurp($_[0]) : undef }

# Runs a command (with extra environment); returns (exit code, or -1 when a signal ended it; stdout and stderr).
# Bounded by 60 s.
sub run {
    my ($env, @cmd) = @_;
    my $r = run_cmd([@cmd], env => $env, timeout => 60);
    return ($r->{code} // -1, $r->{out} . $r->{err});
}

# The install paths this build was configured with.
my $cache = content("$build/CMakeCache.txt") // '';
my ($prefix) = $cache =~ /^CMAKE_INSTALL_PREFIX:PATH=(.*)$/m;
ok(defined $prefix, "the build's install prefix: " . ($prefix // '?'));
$prefix //= '/usr/local';
my $sysconf = $prefix eq '/usr' ? '/etc' : "$prefix/etc"; # GNUInstallDirs puts /usr's config in /etc
my $conf = "$sysconf/conflux/conflux.yaml";
my $stage = "$dir/stage";

subtest 'DESTDIR=... cmake --install puts everything in place' => sub {
    my ($rc, $out) = run({DESTDIR => $stage}, 'cmake', '--install', $build);
    is($rc, 0, 'cmake --install: exit 0') or diag($out);
    for my $f ("$prefix/bin/conflux", "$prefix/bin/conflux-mock") {
        ok(-f "$stage$f" && -x _, "$f, executable");
    }
    my %files = (
        "$prefix/lib/systemd/system/conflux.service" => undef,
        "$prefix/share/conflux/conflux.schema.json" => "$root/config/conflux.schema.json",
        "$prefix/share/conflux/conflux.sample.yaml" => "$root/config/conflux.yaml",
        "$prefix/share/conflux/mock-stubs.yaml" => "$root/config/mock-stubs.yaml",
        $conf => "$root/config/conflux.yaml",
    );
    for my $f (sort keys %files) {
        ok(-f "$stage$f", $f);
        is(content("$stage$f"), content($files{$f}), "$f is a copy of " . ($files{$f} =~ s{^\Q$root/\E}{}r)) if $files{$f};
    }
    is((stat "$stage$conf")[2] & 07777, 0644, 'the config is 0644: the dynamic service user must read it');
    ok(eval { decode_json(content("$stage$prefix/share/conflux/conflux.schema.json")); 1 }, 'the schema is JSON');

    # The unit points at the installed binary and config, wherever the prefix is.
    my $unit = content("$stage$prefix/lib/systemd/system/conflux.service") // '';
    like($unit, qr{^ExecStart=\Q$prefix\E/bin/conflux -c \Q$conf\E$}m, 'the unit runs the installed binary on the installed config');
    like($unit, qr{^ExecStartPre=\Q$prefix\E/bin/conflux -t -c \Q$conf\E$}m, 'and checks that config first');
    like($unit, qr{^ExecReload=/bin/kill -HUP \$MAINPID$}m, 'reload is SIGHUP');
    my ($doc) = $unit =~ m{^Documentation=file://(\S+)$}m;
    ok(defined $doc && -f "$stage$doc", 'the unit\'s Documentation= file is installed: ' . ($doc // 'none'));

    # The installed binary accepts the installed config.
    ($rc, $out) = run({}, "$stage$prefix/bin/conflux", '-t', '-c', "$stage$conf");
    is($rc, 0, 'the installed conflux -t accepts the installed config') or diag($out);
};

subtest 'installing again keeps an edited config' => sub {
    open my $fh, '>>', "$stage$conf" or die "$stage$conf: $!";
    print $fh "# edited by the operator\n";
    close $fh;
    my ($rc, $out) = run({DESTDIR => $stage}, 'cmake', '--install', $build);
    is($rc, 0, 'exit 0') or diag($out);
    like(content("$stage$conf"), qr/# edited by the operator\n\z/, 'the edited config is still there');
    like($out, qr/Keeping: .*conflux\.yaml/, 'and the install says so');
};

subtest 'cpack builds a .deb' => sub {
    plan skip_all => 'cpack or dpkg-deb is not installed' unless $have{cpack} && $have{'dpkg-deb'};
    my $pkgdir = "$dir/pkg";
    mkdir $pkgdir;
    my $t0 = time;
    my ($rc, $out) = run({}, 'cpack', '-G', 'DEB', '--config', "$build/CPackConfig.cmake", '-B', $pkgdir);
    is($rc, 0, 'cpack: exit 0') or diag($out);
    note(sprintf 'cpack took %ds', time - $t0);
    my ($deb) = glob "$pkgdir/conflux_*.deb";
    ok(defined $deb, 'a conflux_VERSION_ARCH.deb') or return;

    ($rc, $out) = run({}, 'dpkg-deb', '-f', $deb, 'Package', 'Depends');
    like($out, qr/^Package: conflux$/m, 'Package: conflux');
    my ($depends) = $out =~ /^Depends: (.*)$/m;
    for my $lib (qw(libc6 libh2o-evloop0.13 libyaml-0-2 libjansson4 libssl3 libsystemd0)) {
        like($depends // '', qr/(^|, )\Q$lib\E( |,|$)/, "depends on $lib");
    }

    ($rc, $out) = run({}, 'dpkg-deb', '-c', $deb);
    is($rc, 0, 'dpkg-deb -c: exit 0');
    for my $f ("$prefix/bin/conflux", "$prefix/bin/conflux-mock", "$prefix/lib/systemd/system/conflux.service", $conf,
        "$prefix/share/conflux/conflux.schema.json") {
        like($out, qr{ root/root .* \.\Q$f\E$}m, "contains $f, owned by root");
    }

    ($rc, $out) = run({}, 'dpkg-deb', '-e', $deb, "$dir/control");
    is($rc, 0, 'dpkg-deb -e: exit 0');
    is(content("$dir/control/conffiles"), "$conf\n", 'the config is a conffile: dpkg keeps an edited one on upgrade');
    for my $script (qw(postinst prerm postrm)) {
        ok(-x "$dir/control/$script", "$script is executable");
        my ($src) = content("$root/systemd/deb/$script");
        is(content("$dir/control/$script"), $src, "$script is systemd/deb/$script");
        ($rc, $out) = run({}, 'sh', '-n', "$dir/control/$script");
        is($rc, 0, "$script parses") or diag($out);
    }
};

done_testing();
