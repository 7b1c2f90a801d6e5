import gc

from app import create_app
from app.templating import compile_templates

app = create_app()
compile_templates(app)
# What loading the app made (the compiled templates included) lives as long as the process:
# move it out of the garbage collector's reach so that collections during requests only walk
# what requests make.
gc.freeze()
