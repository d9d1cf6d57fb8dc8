#!/bin/sh
%EXPORT_USER_DATA%
/opt/lsf/bootstrap.sh
