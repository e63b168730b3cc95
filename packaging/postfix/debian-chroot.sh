#!/bin/sh
# debian-chroot.sh — the commands that point Debian's Postfix (smtpd chrooted
# in /var/spool/postfix) at rt-milter as the Debian package sets it up:
# socket /var/spool/postfix/rt-milter/rt-milter.sock (the sample's), named
# relative to Postfix's queue directory so it works chrooted or not; user
# postfix in group rt-milter (the package's postinst has usually done that
# already: adduser then only says so). Run as root, or paste the block.
# It sets smtpd_milters outright: if you have other milters (OpenDKIM, ...),
# put rt-milter's entry into your existing list by hand instead. Installed
# as /usr/share/doc/rt-milter/postfix/debian-chroot.sh; README.Debian and
# README quote the block, one command per line.
set -e
# --- paste: begin
postconf -e 'smtpd_milters = { unix:rt-milter/rt-milter.sock, default_action=tempfail, content_timeout=300s }'
postconf -e 'milter_protocol = 6'
adduser postfix rt-milter
systemctl restart postfix
# --- paste: end
