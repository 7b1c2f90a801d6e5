import gc

from app import create_app

app = create_app()
# What loading the app made lives as long as the process: move it out of the garbage
# collector's reach so that collections during requests only walk what requests make.
gc.freeze()
