#!/bin/sh
# join the Symphony cluster
