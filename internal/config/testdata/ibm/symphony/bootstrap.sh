#!/bin/bash
%EXPORT_USER_DATA%
. /opt/ibm/spectrumcomputing/profile.platform
egosh ego start
